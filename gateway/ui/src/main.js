import { createApp } from 'vue'
import { ElLoading } from 'element-plus'
// Styles of the Element Plus parts that are called from scripts (templates get theirs on demand).
import 'element-plus/theme-chalk/base.css'
import 'element-plus/es/components/message/style/css'
import 'element-plus/es/components/message-box/style/css'
import 'element-plus/es/components/loading/style/css'
import './styles/main.css'

import App from './App.vue'
import { i18n } from './i18n/index.js'
import { START_LOCATION } from 'vue-router'
import { router } from './router/index.js'
import { setSessionLostHandler } from './api/client.js'
import { setSignedOutElsewhereHandler } from './api/tabs.js'

// A session that ends while a page is open (refresh refused, token no longer accepted) sends
// the user to the login page, which says why and returns to the page after signing in.
setSessionLostHandler(() => {
  const current = router.currentRoute.value
  if (current.meta?.public || current === START_LOCATION) return // the guard in charge handles it
  router.replace({ path: current.fullPath, force: true })
})

// Signing out in another tab ends this tab's session too (the same session): to the login page.
setSignedOutElsewhereHandler(() => {
  const current = router.currentRoute.value
  if (current.meta?.public || current === START_LOCATION) return
  router.replace({ path: current.fullPath, force: true })
})

const app = createApp(App)
app.use(i18n)
app.use(router)
app.use(ElLoading)
app.mount('#app')
