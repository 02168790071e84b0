// The one way this UI talks to the gateway: JSON under /api/v1, RFC 9457 problems as ApiError,
// bearer tokens with one refresh-and-retry on "token_expired".
import { session, setTokens, clearSession } from './session.js'
import { announceRenewal, withRenewalLock } from './tabs.js'
import { currentLanguage } from '../i18n/index.js'

export const API_BASE = '/api/v1'

export class ApiError extends Error {
  constructor({ status = 0, type, title, detail, errors, code, retryAfter, body } = {}) {
    super(detail || title || `HTTP ${status}`)
    this.name = 'ApiError'
    this.status = status
    this.type = type
    this.title = title
    this.detail = detail
    this.errors = errors || {}
    this.code = code
    this.retryAfter = retryAfter
    this.body = body
  }
}

// 401 codes that answer a wrong password or code typed by the user, not a dead session.
const CREDENTIAL_CODES = new Set([
  'invalid_credentials',
  'invalid_password',
  'wrong_password',
  'invalid_otp',
  'mfa_required',
  'account_locked',
  'account_inactive',
])

let onSessionLost = () => {}

/** Called (once per loss) when the session cannot be kept: the app goes to the login page. */
export function setSessionLostHandler(handler) {
  onSessionLost = handler
}

function buildUrl(path, query) {
  const url = path.startsWith('/api/') ? path : API_BASE + path
  if (!query) return url
  const params = new URLSearchParams()
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null || value === '') continue
    if (Array.isArray(value)) value.forEach((v) => params.append(key, v))
    else params.append(key, String(value))
  }
  const qs = params.toString()
  return qs ? `${url}?${qs}` : url
}

// A file the API answers (CSV, JSON export): the blob, with the name the server suggests.
async function readFile(response) {
  const disposition = response.headers.get('Content-Disposition') || ''
  const star = /filename\*=(?:UTF-8'')?([^;]+)/i.exec(disposition)
  const plain = /filename="?([^";]+)"?/i.exec(disposition)
  let filename = null
  try {
    filename = star ? decodeURIComponent(star[1].trim().replace(/^"|"$/g, '')) : plain ? plain[1].trim() : null
  } catch {
    filename = plain ? plain[1].trim() : null
  }
  return { blob: await response.blob(), filename, type: response.headers.get('Content-Type') || '' }
}

async function readBody(response) {
  if (response.status === 204 || response.status === 205) return null
  const text = await response.text()
  if (!text) return null
  const type = response.headers.get('Content-Type') || ''
  if (type.includes('json')) {
    try {
      return JSON.parse(text)
    } catch {
      return null
    }
  }
  return null
}

function retryAfterOf(response, body) {
  if (body && body.retry_after !== undefined && body.retry_after !== null) {
    return Number(body.retry_after)
  }
  const header = response.headers.get('Retry-After')
  if (!header) return undefined
  const seconds = Number(header)
  if (!Number.isNaN(seconds)) return seconds
  const date = Date.parse(header)
  return Number.isNaN(date) ? undefined : Math.max(0, Math.round((date - Date.now()) / 1000))
}

function toError(response, body) {
  const problem = body && typeof body === 'object' ? body : {}
  return new ApiError({
    status: response.status,
    type: problem.type,
    title: problem.title || response.statusText,
    detail: problem.detail,
    errors: problem.errors,
    code: problem.code,
    retryAfter: retryAfterOf(response, problem),
    body: problem,
  })
}

async function send(method, url, { body, headers = {}, token } = {}) {
  const init = {
    method,
    headers: {
      Accept: 'application/json, application/problem+json',
      'Accept-Language': currentLanguage(),
      ...headers,
    },
    credentials: 'same-origin',
  }
  if (token) init.headers.Authorization = `Bearer ${token}`
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json'
    init.body = JSON.stringify(body)
  }
  try {
    return await fetch(url, init)
  } catch (cause) {
    throw new ApiError({ status: 0, code: 'network', detail: String(cause?.message || cause) })
  }
}

let refreshing = null

/**
 * Exchange the refresh token for new tokens; concurrent callers share one request, and tabs
 * sharing the session take turns (tabs.js): a tab whose token another tab just renewed uses
 * that tab's new pair instead of presenting a used refresh token (which revokes the session).
 */
export function refreshTokens() {
  if (!refreshing) {
    refreshing = withRenewalLock(async (renewedElsewhere) => {
      if (renewedElsewhere) return null
      if (!session.refreshToken) throw new ApiError({ status: 401, code: 'no_refresh_token' })
      const response = await send('POST', `${API_BASE}/auth/refresh`, {
        body: { refresh_token: session.refreshToken },
      })
      const data = await readBody(response)
      if (!response.ok) throw toError(response, data)
      setTokens(data)
      announceRenewal()
      return data
    }).finally(() => {
      refreshing = null
    })
  }
  return refreshing
}

let lost = false
let lossReason = null

/** Why the last session ended ("expired" | "invalid"), until the next sign-in. */
export function sessionLossReason() {
  return session.accessToken ? null : lossReason
}

function sessionLost(reason) {
  if (lost) return
  lost = true
  lossReason = reason
  clearSession()
  try {
    onSessionLost(reason)
  } finally {
    setTimeout(() => {
      lost = false
    }, 0)
  }
}

/**
 * request('GET', '/users', { query, body, ifMatch, auth, meta })
 * Returns the parsed JSON body (null for 204), or { data, etag, status } when meta is true.
 * With file: true a successful answer is read as { blob, filename, type } (downloads).
 */
export async function request(method, path, options = {}) {
  const { query, body, ifMatch, auth = true, meta = false, file = false, headers = {} } = options
  const read = (response) => (file && response.ok ? readFile(response) : readBody(response))
  const url = buildUrl(path, query)
  const extra = { ...headers }
  if (ifMatch) extra['If-Match'] = ifMatch

  // An access token about to expire is renewed first, which saves a refused round trip.
  if (auth && session.accessToken && session.refreshToken && Date.now() > session.expiresAt - 10000) {
    try {
      await refreshTokens()
    } catch {
      /* the request below then meets a 401 and takes the ordinary path */
    }
  }

  let response = await send(method, url, { body, headers: extra, token: auth ? session.accessToken : null })
  let data = await read(response)

  if (auth && response.status === 401 && session.accessToken) {
    const code = data?.code
    if (code === 'token_expired') {
      try {
        await refreshTokens()
      } catch (error) {
        // A gateway that is down or overloaded does not end the session; a refused refresh does.
        if (!(error instanceof ApiError) || (error.status >= 400 && error.status < 500)) {
          sessionLost('expired')
        }
        throw error instanceof ApiError ? error : toError(response, data)
      }
      response = await send(method, url, { body, headers: extra, token: session.accessToken })
      data = await read(response)
      if (response.status === 401 && !CREDENTIAL_CODES.has(data?.code)) {
        sessionLost('expired')
      }
    } else if (!CREDENTIAL_CODES.has(code)) {
      sessionLost('invalid')
    }
  }

  if (!response.ok) throw toError(response, data)
  if (meta) return { data, etag: response.headers.get('ETag'), status: response.status }
  return data
}

// One XMLHttpRequest carrying `body` (a File or Blob) as it is, so that the upload's progress can
// be shown. Resolves to { response-like } parts; network failures become ApiError status 0.
function sendRaw(method, url, body, { token, contentType, onProgress, signal }) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest()
    xhr.open(method, url)
    xhr.setRequestHeader('Accept', 'application/json, application/problem+json')
    xhr.setRequestHeader('Accept-Language', currentLanguage())
    xhr.setRequestHeader('Content-Type', contentType || 'application/octet-stream')
    if (token) xhr.setRequestHeader('Authorization', `Bearer ${token}`)
    if (onProgress) {
      xhr.upload.onprogress = (event) => onProgress({ loaded: event.loaded, total: event.lengthComputable ? event.total : body.size })
      xhr.upload.onload = () => onProgress({ loaded: body.size, total: body.size, done: true })
    }
    const abort = () => xhr.abort()
    signal?.addEventListener('abort', abort)
    xhr.onload = () => {
      signal?.removeEventListener('abort', abort)
      const headers = new Headers()
      for (const line of xhr.getAllResponseHeaders().trim().split(/[\r\n]+/)) {
        const at = line.indexOf(':')
        if (at > 0) headers.append(line.slice(0, at).trim(), line.slice(at + 1).trim())
      }
      let data = null
      if (xhr.responseText && (headers.get('Content-Type') || '').includes('json')) {
        try {
          data = JSON.parse(xhr.responseText)
        } catch {
          data = null
        }
      }
      resolve({ status: xhr.status, statusText: xhr.statusText, ok: xhr.status >= 200 && xhr.status < 300, headers, data })
    }
    xhr.onerror = () => {
      signal?.removeEventListener('abort', abort)
      reject(new ApiError({ status: 0, code: 'network', detail: 'network error' }))
    }
    xhr.onabort = () => {
      signal?.removeEventListener('abort', abort)
      reject(new ApiError({ status: 0, code: 'aborted', detail: 'aborted' }))
    }
    xhr.send(body)
  })
}

/**
 * upload('POST', '/customers/imports', file, { query, onProgress, signal }): the file as the raw
 * request body (its own Content-Type, else application/octet-stream), with the bearer token,
 * the same renewal as request(), and onProgress({ loaded, total, done }) while it is sent.
 * Returns the parsed JSON answer; problems are thrown as ApiError.
 */
export async function upload(method, path, file, { query, onProgress, signal } = {}) {
  const url = buildUrl(path, query)
  const contentType = file.type || 'application/octet-stream'
  if (session.accessToken && session.refreshToken && Date.now() > session.expiresAt - 10000) {
    try {
      await refreshTokens()
    } catch {
      /* met as a 401 below */
    }
  }
  const options = { contentType, onProgress, signal }
  let answer = await sendRaw(method, url, file, { ...options, token: session.accessToken })
  if (answer.status === 401 && session.accessToken) {
    if (answer.data?.code === 'token_expired') {
      try {
        await refreshTokens()
      } catch (error) {
        if (!(error instanceof ApiError) || (error.status >= 400 && error.status < 500)) sessionLost('expired')
        throw error instanceof ApiError ? error : toError(answer, answer.data)
      }
      answer = await sendRaw(method, url, file, { ...options, token: session.accessToken })
      if (answer.status === 401) sessionLost('expired')
    } else {
      sessionLost('invalid')
    }
  }
  if (!answer.ok) throw toError(answer, answer.data)
  return answer.data
}

export const api = {
  get: (path, options) => request('GET', path, options),
  post: (path, body, options = {}) => request('POST', path, { ...options, body }),
  patch: (path, body, options = {}) => request('PATCH', path, { ...options, body }),
  put: (path, body, options = {}) => request('PUT', path, { ...options, body }),
  del: (path, body, options = {}) => request('DELETE', path, { ...options, body }),
  /** POST/PUT a File as the raw body with upload progress (see upload()). */
  upload: (path, file, options = {}) => upload(options.method || 'POST', path, file, options),
  /** GET a file with the bearer token and hand it to the browser as a download. */
  download: async (path, { query, filename, accept } = {}) => {
    const headers = accept ? { Accept: `${accept}, application/problem+json` } : {}
    const answer = await request('GET', path, { query, file: true, headers })
    saveBlob(answer.blob, answer.filename || filename || 'download')
    return answer
  },
}

export function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob)
  const link = document.createElement('a')
  link.href = url
  link.download = filename
  link.style.display = 'none'
  document.body.appendChild(link)
  link.click()
  link.remove()
  setTimeout(() => URL.revokeObjectURL(url), 1000)
}

/** A fresh Idempotency-Key: one per attempt of a write, so a retried click changes nothing twice. */
export function newIdempotencyKey() {
  if (globalThis.crypto?.randomUUID) return globalThis.crypto.randomUUID()
  return `${Date.now()}-${Math.random().toString(16).slice(2)}`
}
