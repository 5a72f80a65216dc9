/**
 * How the Azure store reaches its container: a `ContainerClient` passed in, or one made from an
 * account name and a credential (a `TokenCredential`, a shared key, or `AZURE_STORAGE_ACCOUNT` /
 * `AZURE_STORAGE_KEY` from the environment, as tusd reads them), on the account's blob endpoint
 * or on one given (Azurite: `http://127.0.0.1:10000/devstoreaccount1`).
 */
import {
  BlobServiceClient, StorageSharedKeyCredential, type ContainerClient, type PublicAccessType
} from '@azure/storage-blob'
import type { TokenCredential } from '@azure/core-auth'

export interface AzureConnectionOptions {
  /** The container. Required unless `containerClient` is given. */
  container?: string | undefined
  /** A client of the container, used as is (its credential and pipeline stay yours). */
  containerClient?: ContainerClient | undefined
  /** The storage account. Default `AZURE_STORAGE_ACCOUNT`. */
  account?: string | undefined
  /**
   * A Microsoft Entra credential (`DefaultAzureCredential` of `@azure/identity`, …) or a shared key
   * credential. Default: a shared key from `accountKey`, else `AZURE_STORAGE_KEY`.
   */
  credential?: TokenCredential | StorageSharedKeyCredential | undefined
  /** The account's key (base64). Default `AZURE_STORAGE_KEY`. */
  accountKey?: string | undefined
  /**
   * The blob service URL of the account. Default `https://<account>.blob.core.windows.net`.
   * For Azurite: `http://127.0.0.1:10000/devstoreaccount1`.
   */
  endpoint?: string | undefined
  /**
   * Create the container when it is missing, with this public access: `true` or `'private'` (no
   * anonymous access), `'blob'` or `'container'`. Default false: the container must exist.
   */
  createContainer?: boolean | 'private' | PublicAccessType | undefined
}

export function containerClientOf (options: AzureConnectionOptions, env: NodeJS.ProcessEnv = process.env): ContainerClient {
  if (options.containerClient !== undefined) {
    if (options.credential !== undefined || options.accountKey !== undefined || options.endpoint !== undefined) {
      throw new TypeError('AzureStore: give "containerClient" or a credential and endpoint, not both')
    }
    return options.containerClient
  }
  if (typeof options.container !== 'string' || options.container === '') throw new TypeError('AzureStore: "container" must be a non-empty string')
  const account = options.account ?? env.AZURE_STORAGE_ACCOUNT
  if (account === undefined || account === '') throw new TypeError('AzureStore: "account" (or AZURE_STORAGE_ACCOUNT) is required')
  let credential = options.credential
  if (credential === undefined) {
    const key = options.accountKey ?? env.AZURE_STORAGE_KEY
    if (key === undefined || key === '') throw new TypeError('AzureStore: give "credential", "accountKey" or AZURE_STORAGE_KEY')
    credential = new StorageSharedKeyCredential(account, key)
  }
  const endpoint = (options.endpoint ?? `https://${account}.blob.core.windows.net`).replace(/\/+$/, '')
  return new BlobServiceClient(endpoint, credential).getContainerClient(options.container)
}

/** The access to create a missing container with, or undefined when it must exist. */
export function accessOf (createContainer: AzureConnectionOptions['createContainer']): { access: PublicAccessType | undefined } | undefined {
  if (createContainer === undefined || createContainer === false) return undefined
  if (createContainer === true || createContainer === 'private') return { access: undefined }
  if (createContainer === 'blob' || createContainer === 'container') return { access: createContainer }
  throw new TypeError('AzureStore: "createContainer" must be a boolean, "private", "blob" or "container"')
}
