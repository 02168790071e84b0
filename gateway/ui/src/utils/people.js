// Colleagues' names for user ids (owners, actors, API key creators), for every role: the ids a
// page shows are asked for together (GET /users/names?id=…, names only), each id once.
import { reactive } from 'vue'
import { api } from '../api/client.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const BATCH = 200
const names = reactive({})
const queued = new Set()
const asking = new Set()
let timer = null

function schedule() {
  if (!timer) timer = setTimeout(ask, 0)
}

function ask() {
  timer = null
  const ids = [...queued].slice(0, BATCH)
  if (!ids.length) return
  for (const id of ids) {
    queued.delete(id)
    asking.add(id)
  }
  api
    .get('/users/names', { query: { id: ids.join(',') } })
    .then((answer) => {
      for (const id of ids) names[id] = answer?.names?.[id] ?? null
    })
    .catch(() => {
      for (const id of ids) names[id] = null
    })
    .finally(() => {
      for (const id of ids) asking.delete(id)
      if (queued.size) schedule()
    })
}

/** The user's name once known (null until then, or when there is no such user). */
export function userName(id) {
  if (id === null || id === undefined || id === '') return null
  const key = String(id)
  if (!(key in names) && !queued.has(key) && !asking.has(key)) {
    if (!UUID.test(key)) return null
    queued.add(key)
    schedule()
  }
  return names[key] ?? null
}
