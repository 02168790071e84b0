// Sign-in, sign-out and the signed-in user's own record.
import { api, API_BASE } from './client.js'
import { session, setTokens, setUser, clearSession } from './session.js'
import { announceSignOut } from './tabs.js'

export async function login({ email, password, otp }) {
  const body = { email, password }
  if (otp) body.otp = otp
  const answer = await api.post('/auth/login', body, { auth: false })
  setTokens(answer)
  return answer
}

export async function register({ email, name, password }) {
  return api.post('/auth/register', { email, name, password }, { auth: false })
}

export async function authConfig() {
  try {
    return (await api.get('/auth/config', { auth: false })) || {}
  } catch {
    return {}
  }
}

export async function logout() {
  const refreshToken = session.refreshToken
  const accessToken = session.accessToken
  announceSignOut(session.user?.id)
  clearSession()
  if (!refreshToken) return
  try {
    // Sent by hand: the session is already cleared here, and a failure must not matter.
    await fetch(`${API_BASE}/auth/logout`, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        ...(accessToken ? { Authorization: `Bearer ${accessToken}` } : {}),
      },
      body: JSON.stringify({ refresh_token: refreshToken }),
    })
  } catch {
    /* signed out locally all the same */
  }
}

export async function fetchMe() {
  const { data, etag } = await api.get('/me', { meta: true })
  setUser(data, etag)
  return data
}

/** PATCH /me with If-Match; the caller handles 412 (stale). */
export async function updateMe(changes) {
  if (!session.meEtag) await fetchMe()
  const { data, etag } = await api.patch('/me', changes, { ifMatch: session.meEtag, meta: true })
  setUser(data, etag)
  return data
}
