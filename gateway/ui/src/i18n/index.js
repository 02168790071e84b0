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

function initialLanguage() {
  try {
    return normaliseLanguage(localStorage.getItem(STORAGE_KEY)) || DEFAULT_LANGUAGE
  } catch {
    return DEFAULT_LANGUAGE
  }
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
