export {
  fieldMap,
  groupInfo,
  parseConsumers,
  parseGroups,
  readGroups,
  type StreamConsumer,
  type StreamGroup,
  type XinfoClient,
} from './groups.js'
