// The sales users a customer's owner is picked from, by name: GET /users/names?role=sales
// (every signed-in role may ask), read once per signed-in user and shared by every picker.
// 'unknown' until asked, 'list' once read, 'text' when the server would not say (the picker
// then takes a user id typed in).
import { reactive } from 'vue'
import { api } from '../../api/client.js'
import { session } from '../../api/session.js'

const byUser = reactive({})
const pending = {}

export function ownerMode() {
  return byUser[session.user?.id]?.mode || 'unknown'
}

/** [{ id, name }] of the active sales users, by name; [] until read. */
export function salesUsers() {
  return byUser[session.user?.id]?.users || []
}

/** Read the sales users (once per signed-in user; `again` reads them anew). */
export function loadSalesUsers({ again = false } = {}) {
  const me = session.user?.id
  if (!me) return Promise.resolve([])
  if (!again && byUser[me]?.mode === 'list') return Promise.resolve(byUser[me].users)
  if (!pending[me]) {
    pending[me] = api
      .get('/users/names', { query: { role: 'sales' } })
      .then((answer) => {
        const collator = new Intl.Collator(['zh-CN', 'en'])
        const users = Object.entries(answer?.names || {})
          .map(([id, name]) => ({ id, name: name || id }))
          .sort((a, b) => collator.compare(a.name, b.name))
        byUser[me] = { mode: 'list', users }
        return users
      })
      .catch(() => {
        byUser[me] = { mode: 'text', users: [] }
        return []
      })
      .finally(() => delete pending[me])
  }
  return pending[me]
}
