/**
 * The environment for child processes the tests start (servers, commands). tap's process-info
 * hooks follow children and would merge their coverage, taken from differently compiled copies
 * of the same sources (dist/, tsx), into the in-process report; children run without it.
 */
export function childEnv (extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, _TAPJS_PROCESSINFO_COVERAGE_: '0', ...extra }
}
