// Whether the signed-in user may list users to pick an owner from: 'unknown' until tried,
// 'list', or 'text' after a 403 (only admins may list users; managers type the owner's id).
import { reactive } from 'vue'
import { session } from '../../api/session.js'

const byUser = reactive({})

export function ownerMode() {
  return byUser[session.user?.id] || 'unknown'
}

export function setOwnerMode(mode) {
  if (session.user?.id) byUser[session.user.id] = mode
}
