// Turning RFC 9457 problems into words on the screen.
import { reactive, ref } from 'vue'
import { ElMessage } from 'element-plus'
import { i18n } from '../i18n/index.js'
import { formatDuration } from './format.js'
import { roleName, serverText } from './serverText.js'
import { session } from '../api/session.js'

// The gateway names each field by its dotted path ({"lines.0.quantity": [msgs]}); nested
// objects of messages ({lines: {0: {quantity: [msgs]}}}) are read too. Both become the nested
// form, a whole object's own messages under `_schema`.
function nested(errors) {
  const out = {}
  for (const [key, value] of Object.entries(errors || {})) {
    const keys = key.split('.')
    let node = out
    for (const part of keys.slice(0, -1)) {
      if (Array.isArray(node[part])) node[part] = { _schema: node[part] }
      node = node[part] = node[part] || {}
    }
    const last = keys[keys.length - 1]
    const plain = value && typeof value === 'object' && !Array.isArray(value) ? nested(value) : value
    if (node[last] && typeof node[last] === 'object' && !Array.isArray(node[last])) {
      if (Array.isArray(plain)) node[last]._schema = [...(node[last]._schema || []), ...plain]
      else Object.assign(node[last], plain)
    } else node[last] = plain
  }
  return out
}

// {field: [msgs]}, also nested ({changes: {phone: [msgs]}}, {items: {0: [msgs]}}): the leaf
// field each message belongs to.
function fieldEntries(errors, parent = null) {
  const out = []
  for (const [key, value] of Object.entries(parent === null ? nested(errors) : errors || {})) {
    const isObject = value && typeof value === 'object' && !Array.isArray(value)
    const numericKeys = isObject && Object.keys(value).every((k) => /^\d+$/.test(k))
    if (isObject && !numericKeys) out.push(...fieldEntries(value, key))
    else out.push([/^\d+$/.test(key) && parent ? parent : key, flatten(value)])
  }
  return out
}

function flatten(value) {
  if (value === null || value === undefined) return []
  if (Array.isArray(value)) return value.flatMap(flatten)
  if (typeof value === 'object') return Object.values(value).flatMap(flatten)
  return [serverText(String(value))]
}

/** A sentence for the user: our own words for known codes, else the server's detail. */
export function problemMessage(error) {
  const { t, te } = i18n.global
  if (!error) return t('problem.generic')
  const code = error.code
  const wait = error.retryAfter ? formatDuration(error.retryAfter) : null
  if (code && te(`problem.codes.${code}`)) {
    return t(`problem.codes.${code}`, { wait: wait || '', role: roleName(session.user?.role) })
  }
  if (error.status === 429) return t('problem.status.429', { wait: wait || t('time.aMoment') })
  if (error.detail) return serverText(error.detail)
  if (error.status && te(`problem.status.${error.status}`)) {
    return t(`problem.status.${error.status}`, { wait: wait || t('time.aMoment') })
  }
  if (error.status === 0) return t('problem.network')
  return error.title || t('problem.generic')
}

export function showProblem(error) {
  ElMessage({ type: 'error', message: problemMessage(error), showClose: true, duration: 6000 })
}

/**
 * Errors of one form: `errors.field` is the text to show under that field, `message` the text
 * for the whole form. handle(error) fills both from a problem; fields the form does not show
 * are added to the message so nothing the server said is lost.
 */
export function useFormProblem(fields = []) {
  const errors = reactive({})
  const message = ref('')

  function clear() {
    for (const key of Object.keys(errors)) delete errors[key]
    message.value = ''
  }

  function handle(error) {
    clear()
    const loose = []
    for (const [field, messages] of fieldEntries(error?.errors)) {
      const text = messages.join(' ')
      if (fields.includes(field)) errors[field] = errors[field] ? `${errors[field]} ${text}` : text
      else loose.push(field === '_schema' ? text : `${field}: ${text}`)
    }
    const hasFieldErrors = Object.keys(errors).length > 0
    const base = hasFieldErrors && !error?.code && error?.status === 400 ? '' : problemMessage(error)
    message.value = [base, ...loose].filter(Boolean).join(' ')
  }

  return { errors, message, clear, handle }
}

// Every message with the full path of keys that leads to it: {"emails": {"0": {"address":
// ["…"]}}} gives [["emails", "0", "address"], ["…"]].
function pathEntries(errors, prefix = []) {
  const out = []
  for (const [key, value] of Object.entries(prefix.length ? errors || {} : nested(errors))) {
    const path = [...prefix, key]
    if (value && typeof value === 'object' && !Array.isArray(value)) out.push(...pathEntries(value, path))
    else out.push([path, flatten(value)])
  }
  return out
}

/**
 * Errors of a form with lists of rows: `errors['emails.0.address']` is the text to show under
 * that row's field. `accepts(path)` says whether the form shows a field at a dotted path; a
 * message goes to the deepest shown path on its way (`preferences.brands.2` → `preferences.brands`,
 * `emails._schema` → `emails`), else to the form's message.
 */
export function usePathProblem(accepts) {
  const errors = reactive({})
  const message = ref('')

  function clear() {
    for (const key of Object.keys(errors)) delete errors[key]
    message.value = ''
  }

  function set(path, text) {
    errors[path] = errors[path] ? `${errors[path]} ${text}` : text
  }

  function handle(error) {
    clear()
    const loose = []
    for (const [path, messages] of pathEntries(error?.errors)) {
      const text = messages.join(' ')
      const keys = path[path.length - 1] === '_schema' ? path.slice(0, -1) : path
      let placed = false
      for (let n = keys.length; n > 0 && !placed; n--) {
        const candidate = keys.slice(0, n).join('.')
        if (accepts(candidate)) {
          set(candidate, text)
          placed = true
        }
      }
      if (!placed) loose.push(keys.length ? `${keys.join('.')}: ${text}` : text)
    }
    const hasFieldErrors = Object.keys(errors).length > 0
    const base = hasFieldErrors && !error?.code && error?.status === 400 ? '' : problemMessage(error)
    message.value = [base, ...loose].filter(Boolean).join(' ')
  }

  return { errors, message, clear, handle, set }
}
