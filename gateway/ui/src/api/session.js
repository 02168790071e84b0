// Who is signed in: tokens and the current user, kept in sessionStorage so a reload of the tab
// keeps the session while closing the tab ends it. Open tabs of the browser share it (tabs.js):
// a new tab takes an open tab's session, never from disk.
import { reactive } from 'vue'

const KEY = 'cms.session'

function load() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(KEY) || 'null')
    if (saved && saved.accessToken && saved.refreshToken) return saved
  } catch {
    /* a damaged entry is as good as none */
  }
  return null
}

const saved = load()

export const session = reactive({
  accessToken: saved?.accessToken ?? null,
  refreshToken: saved?.refreshToken ?? null,
  // epoch ms after which the access token is no longer accepted (from expires_in)
  expiresAt: saved?.expiresAt ?? 0,
  user: saved?.user ?? null,
  // ETag of GET /api/v1/me, for If-Match on PATCH /api/v1/me
  meEtag: null,
})

function persist() {
  if (!session.accessToken) {
    sessionStorage.removeItem(KEY)
    return
  }
  sessionStorage.setItem(
    KEY,
    JSON.stringify({
      accessToken: session.accessToken,
      refreshToken: session.refreshToken,
      expiresAt: session.expiresAt,
      user: session.user,
    }),
  )
}

export function isAuthenticated() {
  return Boolean(session.accessToken)
}

/** Store the answer of POST /auth/login or /auth/refresh. */
export function setTokens(answer) {
  session.accessToken = answer.access_token
  session.refreshToken = answer.refresh_token ?? session.refreshToken
  const seconds = Number(answer.expires_in) || 900
  session.expiresAt = Date.now() + seconds * 1000
  if (answer.user) session.user = answer.user
  persist()
}

/** Take the session of another tab of this browser (tabs.js). */
export function adoptSession(saved) {
  session.accessToken = saved.accessToken
  session.refreshToken = saved.refreshToken
  session.expiresAt = saved.expiresAt || 0
  if (saved.user) session.user = saved.user
  persist()
}

export function setUser(user, etag) {
  session.user = user
  if (etag !== undefined) session.meEtag = etag
  persist()
}

export function clearSession() {
  session.accessToken = null
  session.refreshToken = null
  session.expiresAt = 0
  session.user = null
  session.meEtag = null
  persist()
}

export function hasRole(...roles) {
  return Boolean(session.user && roles.includes(session.user.role))
}
