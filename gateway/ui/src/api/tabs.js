// One session for the open tabs of this browser, kept in memory and sessionStorage only.
//
// Tokens stay out of localStorage and cookies (nothing outlives the last tab, nothing is sent
// by the browser on its own). A new tab with no session asks the open tabs over a
// BroadcastChannel (same origin only) and takes theirs, so opening a link in a new tab does not
// ask to sign in again. The tabs then share one refresh token, which the server accepts once
// (a reuse revokes the session): renewals are serialised across tabs with the Web Locks API
// and every renewal is announced, so that each tab holds the newest pair. Signing out in one
// tab signs out every tab.
import { adoptSession, clearSession, session } from './session.js'

const CHANNEL = 'cms.session'
const LOCK = 'cms.session.renewal'
const ASK_WAIT_MS = 250

const channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel(CHANNEL) : null
const me = Math.random().toString(36).slice(2)
let onSignedOut = () => {}

// plain data: a reactive proxy cannot be posted (structured clone refuses it)
function snapshot() {
  return JSON.parse(
    JSON.stringify({
      accessToken: session.accessToken,
      refreshToken: session.refreshToken,
      expiresAt: session.expiresAt,
      user: session.user,
    }),
  )
}

if (channel) {
  channel.onmessage = ({ data }) => {
    if (!data || typeof data !== 'object') return
    if (data.type === 'ask' && session.accessToken && session.refreshToken) {
      channel.postMessage({ type: 'share', to: data.from, session: snapshot() })
    } else if (data.type === 'update' && session.accessToken && data.session?.refreshToken) {
      // another tab renewed the shared session: its pair is the one the server will accept
      if (data.session.user?.id === session.user?.id) adoptSession(data.session)
    } else if (data.type === 'signed-out' && session.accessToken && data.userId === session.user?.id) {
      clearSession()
      onSignedOut()
    }
  }
}

/** Called when another tab signs out of the shared session. */
export function setSignedOutElsewhereHandler(handler) {
  onSignedOut = handler
}

let asked = null
/** A tab without a session takes an open tab's (once; resolves true when it got one). */
export function resumeFromOpenTab() {
  if (session.accessToken || !channel) return Promise.resolve(Boolean(session.accessToken))
  if (!asked) {
    asked = new Promise((resolve) => {
      const listener = ({ data }) => {
        if (data?.type !== 'share' || data.to !== me || !data.session?.refreshToken) return
        channel.removeEventListener('message', listener)
        clearTimeout(timer)
        if (!session.accessToken) adoptSession(data.session)
        resolve(true)
      }
      const timer = setTimeout(() => {
        channel.removeEventListener('message', listener)
        resolve(false)
      }, ASK_WAIT_MS)
      channel.addEventListener('message', listener)
      channel.postMessage({ type: 'ask', from: me })
    }).finally(() => {
      asked = null
    })
  }
  return asked
}

/** Tell the other tabs about a renewed pair (after POST /auth/refresh). */
export function announceRenewal() {
  channel?.postMessage({ type: 'update', session: snapshot() })
}

/** Tell the other tabs that this user signed out. */
export function announceSignOut(userId) {
  if (userId) channel?.postMessage({ type: 'signed-out', userId })
}

/**
 * Run `renew` while no other tab renews: `renew(stale)` gets whether the refresh token it
 * started with was replaced meanwhile by another tab's renewal (then there is nothing to do).
 */
export async function withRenewalLock(renew) {
  const before = session.refreshToken
  if (typeof navigator === 'undefined' || !navigator.locks?.request) return renew(false)
  return navigator.locks.request(LOCK, async () => {
    // the renewing tab announced its pair before letting go of the lock: let it arrive
    await new Promise((resolve) => setTimeout(resolve, 0))
    return renew(session.refreshToken !== before && Date.now() < session.expiresAt - 10000)
  })
}
