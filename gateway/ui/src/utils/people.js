// Names for user ids seen in admin tables (audit actors, API key creators), fetched once each.
import { reactive } from 'vue'
import { api } from '../api/client.js'

const names = reactive({})
const pending = new Map()

export function userName(id) {
  if (id === null || id === undefined || id === '') return null
  if (!(id in names) && !pending.has(id)) {
    pending.set(
      id,
      api
        .get(`/users/${encodeURIComponent(id)}`)
        .then((user) => {
          names[id] = user?.name || user?.email || null
        })
        .catch(() => {
          names[id] = null
        })
        .finally(() => pending.delete(id)),
    )
  }
  return names[id] ?? null
}
