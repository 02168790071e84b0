// Form label column width per UI language (Element Plus's "auto" misreads hidden forms).
import { computed } from 'vue'
import { i18n } from '../i18n/index.js'

export function useLabelWidth(zh = '96px', en = '150px') {
  return computed(() => (i18n.global.locale.value === 'zh-CN' ? zh : en))
}
