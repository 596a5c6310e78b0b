export { groupInfo, parseGroups, readGroups, type StreamGroup, type XinfoClient } from './groups.js'
