// Customer imports (/api/v1/customers/imports): upload a CSV/XLSX file, follow it, read what it
// rejected, revert it.
import { api } from './client.js'

const one = (id, suffix = '') => `/customers/imports/${encodeURIComponent(id)}${suffix}`

export const customerImports = {
  /**
   * The file is the request body; the request stays open while the server imports and answers
   * the finished Import (201). onProgress({ loaded, total, done }) follows the upload itself.
   */
  start: (file, { importId, mode, matchOn, onProgress, signal }) =>
    api.upload('/customers/imports', file, {
      query: { mode, match_on: matchOn, filename: file.name, import_id: importId },
      onProgress,
      signal,
    }),
  list: ({ limit, cursor } = {}) => api.get('/customers/imports', { query: { limit, cursor } }),
  get: (id) => api.get(one(id)),
  rejections: (id, { limit, cursor } = {}) => api.get(one(id, '/rejections'), { query: { limit, cursor } }),
  rejectionsCsv: (id) =>
    api.download(one(id, '/rejections.csv'), { filename: `import-${id}-rejected.csv`, accept: 'text/csv' }),
  revert: (id) => api.post(one(id, '/revert')),
}
