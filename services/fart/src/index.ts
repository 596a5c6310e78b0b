export { type AppDeps, buildApp } from './app.js'
export { type FartConfig, readEnv, toConfig } from './config.js'
export type { IndexReader, LongWindowReader, Partner, TopPartnersQuery } from './index-source.js'
export { createFartService, type FartService, queueViewPlugin } from './service.js'
