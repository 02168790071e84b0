// Payments (/api/v1/payments): take one through the sandbox provider, record cash or a transfer,
// follow it, confirm / simulate the sandbox's customer step, capture, cancel, refund; the daily
// reconciliation. Money-moving writes carry an Idempotency-Key, so a retried click never pays
// twice.
import { api, newIdempotencyKey } from './client.js'

export { newIdempotencyKey }

const one = (id, suffix = '') => `/payments/${encodeURIComponent(id)}${suffix}`

const keyed = (key) => ({ headers: { 'Idempotency-Key': key || newIdempotencyKey() } })

export const payments = {
  list: (query) => api.get('/payments', { query }),
  forOrder: (orderId) => api.get('/payments', { query: { order_id: orderId, limit: 200 } }),
  get: (id) => api.get(one(id)),
  create: (body, key) => api.post('/payments', body, keyed(key)),
  recordManual: (body, key) => api.post('/payments/manual', body, keyed(key)),
  capture: (id, key) => api.post(one(id, '/capture'), undefined, keyed(key)),
  cancel: (id, reason) => api.post(one(id, '/cancel'), reason ? { reason } : {}),
  refund: (id, body, key) => api.post(one(id, '/refunds'), body, keyed(key)),
  confirm: (id) => api.post(one(id, '/confirm')),
  sandboxScan: (id) => api.post(one(id, '/sandbox-scan')),
  reconciliation: (date) => api.get('/payments/reconciliation', { query: { date } }),
  /** The list's filters (status, method, order_id …), every matching payment as CSV. */
  exportCsv: (query) => api.download('/payments/export.csv', { query, filename: 'payments.csv', accept: 'text/csv' }),
  reconciliationCsv: (date) =>
    api.download('/payments/reconciliation.csv', {
      query: { date },
      filename: `reconciliation-${date}.csv`,
      accept: 'text/csv',
    }),
}

export const PAYMENT_METHODS = ['card', 'alipay', 'wechat_pay', 'bank_transfer']
export const MANUAL_METHODS = ['cash', 'bank_transfer']
export const OPEN_STATUSES = ['pending', 'authorized']
export const TAKER_ROLES = ['admin', 'manager', 'sales']
export const REFUND_ROLES = ['admin', 'manager']
export const RECONCILIATION_ROLES = ['admin', 'manager']

/** The sandbox's documented test cards (README "Payments"). */
export const SANDBOX_CARDS = [
  { number: '4242424242424242', outcome: 'success' },
  { number: '5555555555554444', outcome: 'success' },
  { number: '6200000000000005', outcome: 'success' },
  { number: '4000002500003155', outcome: 'confirm' },
  { number: '4000000000000002', outcome: 'declined' },
  { number: '4000000000009995', outcome: 'insufficient' },
]
