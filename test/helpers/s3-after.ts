/**
 * Run by tap after all test files (the `after` entry of the tap configuration): stops the
 * run's shared radosgw, if a test started one (see ceph-s3.ts). The runner is our parent.
 */
import { serverDirectory, stopServer } from './ceph-s3.js'

stopServer(serverDirectory(process.ppid))
