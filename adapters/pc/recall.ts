/**
 * Recall over the PC's exposed scopes, for the MCP tool and the CLI. One unscoped query, its hits
 * outside the exposed scopes dropped, is much faster than one query per scope (a scope filter
 * keeps the text index from skipping candidates early); when the dropped hits leave too few, the
 * query is repeated with a larger limit, and past that per scope.
 *
 * @module
 */
import type { MemoryKind, RecallHit } from '../../src/index.js'
import type { PcDevice } from './open-pc.js'

/** What to recall. */
export interface ExposedRecallQuery {
  text: string
  limit: number
  /** One exposed scope (checked); default every exposed scope. */
  scope?: string
  tags?: string[]
  kind?: MemoryKind
}

/** Ranked hits, best first, only of exposed scopes. Throws `ScopeAccessError` for a scope not exposed. */
export function recallExposed(pc: PcDevice, query: ExposedRecallQuery): RecallHit[] {
  const filters = { ...(query.tags !== undefined && { tags: query.tags }), ...(query.kind !== undefined && { kind: query.kind }) }
  if (query.scope !== undefined) return pc.sync.memory.recallWithScores({ text: query.text, scope: pc.requireScope(query.scope), limit: query.limit, ...filters })
  const exposed = new Set(pc.exposedScopes())
  if (exposed.size === 0) return []
  for (let limit = query.limit; limit <= query.limit * 16; limit *= 4) {
    const hits = pc.sync.memory.recallWithScores({ text: query.text, limit, ...filters })
    const kept = hits.filter((h) => exposed.has(h.item.scope))
    if (kept.length >= query.limit || hits.length < limit) return kept.slice(0, query.limit)
  }
  // Mostly hits of other scopes: per exposed scope (one index, so the scores compare directly).
  return [...exposed]
    .flatMap((scope) => pc.sync.memory.recallWithScores({ text: query.text, scope, limit: query.limit, ...filters }))
    .sort((a, b) => b.score - a.score)
    .slice(0, query.limit)
}
