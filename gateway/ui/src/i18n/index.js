import { createI18n } from 'vue-i18n'
import zhCN from './locales/zh-CN.js'
import en from './locales/en.js'

export const LANGUAGES = [
  { code: 'zh-CN', label: '中文' },
  { code: 'en', label: 'English' },
]

const STORAGE_KEY = 'cms.language'
export const DEFAULT_LANGUAGE = 'zh-CN'

export function normaliseLanguage(value) {
  if (!value) return null
  const lower = String(value).toLowerCase()
  if (lower.startsWith('zh')) return 'zh-CN'
  if (lower.startsWith('en')) return 'en'
  return null
}

/** The browser's own preference, when nobody chose yet: Chinese (any zh*) or else English. */
export function browserLanguage(languages = globalThis.navigator?.languages) {
  const first = (languages || [globalThis.navigator?.language]).find(Boolean)
  if (!first) return DEFAULT_LANGUAGE
  return String(first).toLowerCase().startsWith('zh') ? 'zh-CN' : 'en'
}

// The choice saved in this browser (the switch, or the user's profile at sign-in) first; then
// the browser's languages, so a new browser set to English does not open in Chinese.
function initialLanguage() {
  let saved = null
  try {
    saved = normaliseLanguage(localStorage.getItem(STORAGE_KEY))
  } catch {
    /* private mode */
  }
  return saved || browserLanguage()
}

export const i18n = createI18n({
  legacy: false,
  globalInjection: true,
  locale: initialLanguage(),
  fallbackLocale: 'en',
  messages: { 'zh-CN': zhCN, en },
})

document.documentElement.lang = i18n.global.locale.value

export function currentLanguage() {
  return i18n.global.locale.value
}

/** Show the UI in this language and remember it in this browser. */
export function applyLanguage(code) {
  const language = normaliseLanguage(code) || DEFAULT_LANGUAGE
  i18n.global.locale.value = language
  document.documentElement.lang = language
  try {
    localStorage.setItem(STORAGE_KEY, language)
  } catch {
    /* private mode: the choice lasts for this page only */
  }
  return language
}
