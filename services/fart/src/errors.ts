import { STATUS_CODES } from 'node:http'
import { IndexQueryError } from '@circles/interaction-index'
import type {
  FastifyError,
  FastifyReply,
  FastifyRequest,
  FastifySchemaValidationError,
} from 'fastify'
import { ActorError } from './actors.js'
import { ParamError } from './params.js'
import { RETRY_AFTER_SECONDS, redisFault, unavailableBody } from './redis-faults.js'

// Every error answer is JSON `{ statusCode, error, message }` with a message meant for the client: never a
// stack, a Redis reply or a file path. Redis trouble is 503 with Retry-After (see redis-faults.ts); what is
// left is a bug, logged with the URL and answered 500 "internal error".

export function createErrorHandler(now: () => number = Date.now) {
  // Redis trouble fails every request alike: one line per 10 s says so, not one per request.
  let lastWarn = Number.NEGATIVE_INFINITY
  return (err: FastifyError | Error, req: FastifyRequest, reply: FastifyReply) => {
    if (err instanceof ActorError || err instanceof ParamError || err instanceof IndexQueryError) {
      const status = err instanceof ActorError ? err.statusCode : 400
      const name =
        status === 400 ? 'Bad Request' : status === 404 ? 'Not Found' : 'Service Unavailable'
      return reply.code(status).send({ statusCode: status, error: name, message: err.message })
    }
    const e = err as { validation?: unknown; statusCode?: number; message: string }
    if (e.validation || (e.statusCode !== undefined && e.statusCode >= 400 && e.statusCode < 500)) {
      const status = e.statusCode ?? 400
      return reply.code(status).send({
        statusCode: status,
        error: STATUS_CODES[status] ?? 'Bad Request',
        message: e.message,
      })
    }
    const fault = redisFault(err)
    if (fault) {
      if (now() - lastWarn >= 10_000) {
        lastWarn = now()
        req.log.warn({ err, url: req.url }, 'Redis cannot serve requests: answering 503')
      }
      return reply
        .code(503)
        .header('retry-after', String(RETRY_AFTER_SECONDS))
        .send(unavailableBody(fault, err))
    }
    req.log.error({ err, url: req.url }, 'request failed')
    return reply
      .code(500)
      .send({ statusCode: 500, error: 'Internal Server Error', message: 'internal error' })
  }
}

/**
 * "querystring/window: "1" is not valid; expected 1h..48h from the live index, or 7d, 30d, 90d from the
 * daily aggregates" rather than AJV's `must match pattern "^(?:[1-9]|..."` or `must match a schema in
 * anyOf`: the schema's own description (also shown at /docs) says what a good value looks like.
 */
export function describeSchemaErrors(
  errors: FastifySchemaValidationError[],
  dataVar: string,
): Error {
  const described = errors.find(
    (e) =>
      typeof (e as { parentSchema?: { description?: unknown } }).parentSchema?.description ===
      'string',
  ) as
    | (FastifySchemaValidationError & { parentSchema: { description: string }; data?: unknown })
    | undefined
  const first = errors[0]
  if (
    !described ||
    described.keyword === 'required' ||
    described.keyword === 'additionalProperties'
  ) {
    const path = first ? `${dataVar}${first.instancePath}` : dataVar
    return new Error(first ? `${path} ${first.message}` : `${dataVar} is not valid`)
  }
  const value = JSON.stringify(described.data)
  const shown = value !== undefined && value.length <= 80 ? value : 'the value'
  return new Error(
    `${dataVar}${described.instancePath}: ${shown} is not valid; expected ${described.parentSchema.description}`,
  )
}
