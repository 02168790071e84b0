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
import { router } from './router/index.js'
import { setSessionLostHandler } from './api/client.js'

setSessionLostHandler((reason) => {
  const current = router.currentRoute.value
  if (current.meta?.public) return
  router.replace({
    name: 'login',
    query: { reason, ...(current.fullPath && current.fullPath !== '/' ? { redirect: current.fullPath } : {}) },
  })
})

const app = createApp(App)
app.use(i18n)
app.use(router)
app.use(ElLoading)
app.mount('#app')
