export {
  AppViewError,
  type BskyClient,
  type BskyClientOptions,
  type CallInfo,
  createBskyClient,
  DEFAULT_APPVIEW_URL,
  PROFILES_PER_CALL,
  type Profile,
  type QueryParams,
  retryDelayFromHeaders,
} from './client.js'
export {
  cachedProfile,
  createProfileCache,
  type ProfileCache,
  type ProfileCacheOptions,
  type ProfileLookup,
} from './profile-cache.js'
export {
  dropNames,
  foldName,
  NAME_MAX_CHARS,
  type NameHit,
  nameMembers,
  searchNames,
  trimProfileNames,
} from './profile-names.js'
