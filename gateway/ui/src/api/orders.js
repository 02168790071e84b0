// The orders API (/api/v1/orders): thin wrappers, so the pages read as what they do.
import { api, newIdempotencyKey } from './client.js'

const one = (id, suffix = '') => `/orders/${encodeURIComponent(id)}${suffix}`

/** The list's filters as query parameters. */
export function orderQuery(filters = {}) {
  return {
    customer_id: filters.customer_id || undefined,
    status: filters.status?.length ? filters.status.join(',') : undefined,
    placed_from: filters.placed_from || undefined,
    placed_to: filters.placed_to || undefined,
    total_min: filters.total_min ?? undefined,
    total_max: filters.total_max ?? undefined,
    product_id: filters.product_id || undefined,
    q: filters.q?.trim() || undefined,
    sort: filters.sort || undefined,
  }
}

export const orders = {
  list: (filters, { limit, cursor } = {}) => api.get('/orders', { query: { ...orderQuery(filters), limit, cursor } }),
  /** The orders among ``ids`` (at most 200) that the caller may see, in one request. */
  byIds: (ids) => api.get('/orders', { query: { id: ids.join(','), limit: ids.length } }),
  /** { data: Order, etag } */
  get: (id) => api.get(one(id), { meta: true }),
  place: (body, key) => api.post('/orders', body, { headers: { 'Idempotency-Key': key || newIdempotencyKey() } }),
  /** Lines (with discount and tax rate) and/or the delivery address, with the ETag read. */
  update: (id, changes, etag) => api.patch(one(id), changes, { ifMatch: etag }),
  /** fulfil | complete | cancel | return */
  act: (id, action, { reason, etag } = {}) => api.post(one(id, `/${action}`), { reason: reason || null }, { ifMatch: etag }),
  history: (id) => api.get(one(id, '/history')),
  /** The changes feed: { items, last_position }; waits up to `wait` seconds for news. */
  changes: ({ after, wait, orderId } = {}) =>
    api.get('/orders/changes', { query: { after, wait, order_id: orderId } }),
}

export const orderImports = {
  /** The file is the body; the answer is the finished import with its counts. */
  start: (file, { onProgress, signal } = {}) =>
    api.upload('/orders/imports', file, { query: { filename: file.name }, onProgress, signal }),
  list: () => api.get('/orders/imports'),
  get: (id) => api.get(`/orders/imports/${encodeURIComponent(id)}`),
}

export const etagOf = (order) => (order && order.version != null ? `"${order.version}"` : null)
