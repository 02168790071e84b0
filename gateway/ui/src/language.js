// Switching the UI language: at once on screen, in this browser, and on the user's record.
import { ref } from 'vue'
import { applyLanguage, normaliseLanguage } from './i18n/index.js'
import { session } from './api/session.js'
import { fetchMe, updateMe } from './api/auth.js'
import { showProblem } from './utils/problem.js'

export const savingLanguage = ref(false)

export async function switchLanguage(code) {
  const language = applyLanguage(code)
  if (!session.accessToken || !session.user || session.user.language === language) return
  savingLanguage.value = true
  try {
    try {
      await updateMe({ language })
    } catch (error) {
      // Someone changed the record meanwhile: the language does not conflict, so take the
      // fresh version and say it again.
      if (error.status !== 412) throw error
      await fetchMe()
      await updateMe({ language })
    }
  } catch (error) {
    showProblem(error)
  } finally {
    savingLanguage.value = false
  }
}

/** After sign-in: the user's saved language wins over the browser's. */
export function adoptUserLanguage(user) {
  const language = normaliseLanguage(user?.language)
  if (language) applyLanguage(language)
}
