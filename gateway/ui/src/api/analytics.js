// Analytics figures (/api/v1/analytics): revenue, payment rates, customer figures, RFM segments,
// cohorts, lifetime value, freshness; rebuild for admins.
import { api } from './client.js'

// The filters every figure takes: date_from / date_to (UTC days, to exclusive), currency.
function range(filters = {}) {
  return {
    date_from: filters.dateFrom || undefined,
    date_to: filters.dateTo || undefined,
    currency: filters.currency || undefined,
  }
}

export const SEGMENTS = [
  'champions',
  'loyal',
  'potential_loyalists',
  'new',
  'at_risk',
  'cant_lose_them',
  'hibernating',
  'lost',
]

export const analytics = {
  overview: (filters) => api.get('/analytics/overview', { query: range(filters) }),
  revenue: (filters, granularity = 'day') =>
    api.get('/analytics/revenue', { query: { ...range(filters), granularity } }),
  revenueByMethod: (filters) => api.get('/analytics/revenue/methods', { query: range(filters) }),
  salesByCategory: (filters) => api.get('/analytics/sales/categories', { query: range(filters) }),
  salesByProduct: (filters, limit = 10) =>
    api.get('/analytics/sales/products', { query: { ...range(filters), limit } }),
  paymentRates: (filters) => api.get('/analytics/payments/rates', { query: range(filters) }),
  cohorts: (filters) => api.get('/analytics/cohorts', { query: range(filters) }),
  segments: (currency) => api.get('/analytics/segments', { query: { currency } }),
  segmentCustomers: (segment, currency, { limit, cursor } = {}) =>
    api.get(`/analytics/segments/${encodeURIComponent(segment)}/customers`, {
      query: { currency, limit, cursor },
    }),
  exportSegment: (segment, currency) =>
    api.download(`/analytics/segments/${encodeURIComponent(segment)}/export.csv`, {
      query: { currency },
      filename: `segment-${segment}.csv`,
      accept: 'text/csv',
    }),
  clv: ({ currency, asOf, unit = 'weeks', horizon = 52, limit = 10 } = {}) =>
    api.get('/analytics/clv', {
      query: { currency, as_of: asOf || undefined, unit, horizon, limit },
    }),
  freshness: (windowSeconds = 900) =>
    api.get('/analytics/freshness', { query: { window_seconds: windowSeconds } }),
  rebuild: () => api.post('/analytics/rebuild', { confirm: true }),
  getRebuild: (id) => api.get(`/analytics/rebuilds/${encodeURIComponent(id)}`),
}
