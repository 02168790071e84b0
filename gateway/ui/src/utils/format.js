// Dates are shown in the browser's own time zone, in the UI's language.
import { i18n } from '../i18n/index.js'

function locale() {
  return i18n.global.locale.value === 'zh-CN' ? 'zh-CN' : 'en'
}

function toDate(value) {
  if (!value) return null
  const date = value instanceof Date ? value : new Date(value)
  return Number.isNaN(date.getTime()) ? null : date
}

export function formatDateTime(value, { seconds = false } = {}) {
  const date = toDate(value)
  if (!date) return '—'
  return new Intl.DateTimeFormat(locale(), {
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    ...(seconds ? { second: '2-digit' } : {}),
    hour12: false,
  }).format(date)
}

export function formatDate(value) {
  const date = toDate(value)
  if (!date) return '—'
  return new Intl.DateTimeFormat(locale(), { year: 'numeric', month: '2-digit', day: '2-digit' }).format(date)
}

export function formatRelative(value) {
  const date = toDate(value)
  if (!date) return ''
  const seconds = Math.round((date.getTime() - Date.now()) / 1000)
  const abs = Math.abs(seconds)
  const rtf = new Intl.RelativeTimeFormat(locale(), { numeric: 'auto' })
  if (abs < 60) return rtf.format(seconds, 'second')
  if (abs < 3600) return rtf.format(Math.round(seconds / 60), 'minute')
  if (abs < 86400) return rtf.format(Math.round(seconds / 3600), 'hour')
  if (abs < 86400 * 30) return rtf.format(Math.round(seconds / 86400), 'day')
  if (abs < 86400 * 365) return rtf.format(Math.round(seconds / (86400 * 30)), 'month')
  return rtf.format(Math.round(seconds / (86400 * 365)), 'year')
}

/** "45 秒", "5 分钟", "2 小时" — rounded up, as a wait time. */
export function formatDuration(totalSeconds) {
  const { t } = i18n.global
  const s = Math.max(0, Math.ceil(Number(totalSeconds) || 0))
  if (s < 60) return t('time.seconds', { n: s }, s)
  if (s < 600 && s % 60 !== 0) return t('time.minutesSeconds', { m: Math.floor(s / 60), s: s % 60 })
  if (s < 3600) {
    const m = Math.ceil(s / 60)
    return t('time.minutes', { n: m }, m)
  }
  if (s < 86400) {
    const h = Math.round((s / 3600) * 10) / 10
    return t('time.hours', { n: h }, h === 1 ? 1 : 2)
  }
  const d = Math.round((s / 86400) * 10) / 10
  return t('time.days', { n: d }, d === 1 ? 1 : 2)
}

/**
 * A phone number as stored (E.164) in the groups people read it in: a Chinese mobile
 * +8613800138000 as "+86 138 0013 8000", a landline +861066668888 as "+86 10 6666 8888"
 * (area code, then the local number), +864008001234 as "+86 400 800 1234"; any other number
 * as it is.
 */
export function formatPhone(e164) {
  if (!e164) return e164
  const text = String(e164)
  const cn = /^\+86(\d{10,11})$/.exec(text)
  if (!cn) return text
  const n = cn[1]
  const groups =
    /^(1\d{2})(\d{4})(\d{4})$/.exec(n) || // mobile
    /^([48]00)(\d{3})(\d{4})$/.exec(n) || // 400 / 800 service numbers
    /^(10|2\d)(\d{4})(\d{4})$/.exec(n) || // Beijing, Shanghai, Guangzhou…: 2-digit area code
    /^([3-9]\d{2})(\d{4})(\d{4})$/.exec(n) || // 3-digit area code, 8-digit number
    /^([3-9]\d{2})(\d{3})(\d{4})$/.exec(n) // 3-digit area code, 7-digit number
  return groups ? `+86 ${groups.slice(1).join(' ')}` : text
}

/**
 * Whether a number (as stored, or as typed: "010-6666 8888", "+86 10 6666 8888") is a Chinese
 * fixed line rather than a mobile: true, false, or null when it cannot tell (another country,
 * too short).
 */
export function isChineseLandline(number) {
  if (!number) return null
  let digits = String(number).trim()
  const international = digits.startsWith('+') || digits.startsWith('00')
  digits = digits.replace(/\D/g, '')
  if (international) {
    digits = digits.replace(/^00/, '')
    if (!digits.startsWith('86')) return null
    digits = digits.slice(2)
  } else if (digits.startsWith('0')) {
    digits = digits.slice(1) // the trunk prefix of an area code: 010, 0571
  }
  if (digits.length < 9) return null
  if (/^1[3-9]\d{9}$/.test(digits)) return false // mobile
  return /^10\d{8}$/.test(digits) || /^[2-9]\d{8,10}$/.test(digits) // Beijing 10, then 2x, 3xx–9xx
}
