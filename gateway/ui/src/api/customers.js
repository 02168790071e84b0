// The customers API (/api/v1/customers): thin wrappers, so the pages read as what they do.
import { api } from './client.js'

const one = (id, suffix = '') => `/customers/${encodeURIComponent(id)}${suffix}`

/** The list's filters as query parameters (shared by the list and the CSV export). */
export function listQuery(filters = {}) {
  return {
    q: filters.q?.trim() || undefined,
    tag: filters.tag?.trim() || undefined,
    owner_id: filters.owner_id || undefined,
    status: filters.status || undefined,
    created_from: filters.created_from || undefined,
    created_to: filters.created_to || undefined,
    consent: filters.consent || undefined,
    segment: filters.segment || undefined,
    has_orders: filters.has_orders || undefined,
    sort: filters.sort || undefined,
  }
}

export const customers = {
  list: (filters, { limit, cursor } = {}) => api.get('/customers', { query: { ...listQuery(filters), limit, cursor } }),
  /** { data: Customer, etag } */
  get: (id, { asOf } = {}) => api.get(one(id), { query: { as_of: asOf }, meta: true }),
  create: (body) => api.post('/customers', body),
  update: (id, changes, etag) => api.patch(one(id), changes, { ifMatch: etag }),
  tags: (id, { add = [], remove = [] }) => api.post(one(id, '/tags'), { add, remove }),
  assign: (id, ownerId) => api.post(one(id, '/owner'), { owner_id: ownerId }),
  consents: (id) => api.get(one(id, '/consents')),
  recordConsent: (id, body) => api.post(one(id, '/consents'), body),
  archive: (id) => api.post(one(id, '/archive')),
  restore: (id) => api.post(one(id, '/restore')),
  merge: (id, sourceId) => api.post(one(id, '/merge'), { source_id: sourceId }),
  undoMerge: (mergeId) => api.post(`/customers/merges/${encodeURIComponent(mergeId)}/undo`),
  timeline: (id, { limit, cursor } = {}) => api.get(one(id, '/timeline'), { query: { limit, cursor } }),
  erase: (id) => api.post(one(id, '/erase'), { confirm: true }),
  privacyExport: (id) =>
    api.download(one(id, '/privacy-export'), { filename: `customer-${id}-privacy-export.json`, accept: 'application/json' }),
  /** Custom attribute values: { key: value }, null removing one (If-Match: the record's ETag). */
  setAttributes: (id, values, etag) => api.post(one(id, '/attributes'), { values }, { ifMatch: etag }),
  exportCsv: (filters) =>
    api.download('/customers/export.csv', { query: listQuery(filters), filename: 'customers.csv', accept: 'text/csv' }),
}

/** ETag of a customer as returned by a write (the gateway's ETag is the quoted stream version). */
export const etagOf = (customer) =>
  customer && customer.version !== undefined && customer.version !== null ? `"${customer.version}"` : null

/** Custom customer attributes, defined by admins (GET for everyone, POST for admins). */
export const customerAttributes = {
  list: () => api.get('/customer-attributes'),
  /** Defines a new key, or changes a defined one's label and options (its type is fixed). */
  define: (body) => api.post('/customer-attributes', body),
}
