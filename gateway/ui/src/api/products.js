// The product catalogue (/api/v1/products).
import { api } from './client.js'

const one = (id) => `/products/${encodeURIComponent(id)}`

export const products = {
  list: (filters = {}, { limit, cursor } = {}) =>
    api.get('/products', {
      query: {
        q: filters.q?.trim() || undefined,
        category: filters.category || undefined,
        brand: filters.brand || undefined,
        active: filters.active ?? undefined,
        currency: filters.currency || undefined,
        limit,
        cursor,
      },
    }),
  get: (id) => api.get(one(id), { meta: true }),
  create: (body) => api.post('/products', body),
  update: (id, changes, etag) => api.patch(one(id), changes, { ifMatch: etag }),
}
