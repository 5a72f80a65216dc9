import neostandard, { resolveIgnoresFromGitignore } from 'neostandard'

export default neostandard({
  ts: true,
  // the command's CommonJS entry (bin/fastify-tus.cts)
  filesTs: ['**/*.cts'],
  ignores: resolveIgnoresFromGitignore()
})
