import { createRouter, createWebHistory } from 'vue-router'
import { House, User, Key, Tickets, Lock, Postcard, ShoppingCart, Goods, Money, Wallet, DataAnalysis, CollectionTag } from '@element-plus/icons-vue'
import { session, isAuthenticated } from '../api/session.js'
import { resumeFromOpenTab } from '../api/tabs.js'
import { fetchMe } from '../api/auth.js'
import { sessionLossReason } from '../api/client.js'
import AppLayout from '../layouts/AppLayout.vue'
import LoginView from '../views/LoginView.vue'
import { CUSTOMER_ROLES, CUSTOMER_WRITE_ROLES } from '../utils/customers.js'
import { IMPORT_ROLES } from '../utils/customerImports.js'
import { ORDER_ROLES, ORDER_WRITE_ROLES, PRODUCT_ADMIN_ROLES } from '../components/orders/orderRules.js'

/*
 * meta.public: reachable without signing in.
 * meta.roles: the only roles that may open the page (others get the "no access" page).
 * meta.nav: shown in the side navigation (label key, icon, group key, order). A module's
 * pages join the navigation by adding routes here with meta.nav: nothing else to change.
 */
const routes = [
  { path: '/login', name: 'login', component: LoginView, meta: { public: true, title: 'auth.signInTitle' } },
  {
    path: '/register',
    name: 'register',
    component: () => import('../views/RegisterView.vue'),
    meta: { public: true, title: 'auth.registerTitle' },
  },
  {
    path: '/mfa-setup',
    name: 'mfa-setup',
    component: () => import('../views/MfaSetupView.vue'),
    meta: { title: 'mfa.setupTitle', allowDuringMfaSetup: true },
  },
  {
    path: '/',
    component: AppLayout,
    children: [
      {
        path: '',
        name: 'home',
        component: () => import('../views/HomeView.vue'),
        meta: { title: 'nav.home', nav: { label: 'nav.home', icon: House, order: 0 } },
      },
      {
        path: 'profile',
        name: 'profile',
        component: () => import('../views/ProfileView.vue'),
        meta: { title: 'nav.profile' },
      },
      {
        path: 'customers',
        name: 'customers',
        component: () => import('../views/customers/CustomersView.vue'),
        meta: {
          title: 'nav.customers',
          roles: CUSTOMER_ROLES,
          nav: { label: 'nav.customers', icon: Postcard, order: 10 },
        },
      },
      {
        path: 'customers/new',
        name: 'customer-new',
        component: () => import('../views/customers/CustomerFormView.vue'),
        meta: { title: 'customers.createTitle', roles: CUSTOMER_WRITE_ROLES },
      },
      {
        // 导入客户: a new import, its progress and report; /customers/imports/<id> opens a past one.
        path: 'customers/imports/:importId?',
        name: 'customer-imports',
        component: () => import('../views/customers/CustomerImportView.vue'),
        meta: { title: 'customers.imports.title', roles: IMPORT_ROLES },
      },
      {
        path: 'customers/:id',
        name: 'customer',
        component: () => import('../views/customers/CustomerDetailView.vue'),
        meta: { title: 'customers.detailTitle', roles: CUSTOMER_ROLES },
      },
      {
        path: 'customers/:id/edit',
        name: 'customer-edit',
        component: () => import('../views/customers/CustomerFormView.vue'),
        meta: { title: 'customers.editPageTitle', roles: CUSTOMER_WRITE_ROLES },
      },
      {
        path: 'orders',
        name: 'orders',
        component: () => import('../views/orders/OrdersView.vue'),
        meta: { title: 'nav.orders', roles: ORDER_ROLES, nav: { label: 'nav.orders', icon: ShoppingCart, order: 20 } },
      },
      {
        path: 'orders/new',
        name: 'order-new',
        component: () => import('../views/orders/OrderCreateView.vue'),
        meta: { title: 'orders.createTitle', roles: ORDER_WRITE_ROLES },
      },
      {
        path: 'orders/imports',
        name: 'order-imports',
        component: () => import('../views/orders/OrderImportView.vue'),
        meta: { title: 'orders.import.title', roles: PRODUCT_ADMIN_ROLES },
      },
      {
        path: 'orders/:id',
        name: 'order',
        component: () => import('../views/orders/OrderDetailView.vue'),
        meta: { title: 'orders.detailTitle', roles: ORDER_ROLES },
      },
      {
        path: 'products',
        name: 'products',
        component: () => import('../views/products/ProductsView.vue'),
        meta: { title: 'nav.products', roles: ORDER_ROLES, nav: { label: 'nav.products', icon: Goods, order: 25 } },
      },
      {
        path: 'payments',
        name: 'payments',
        component: () => import('../views/payments/PaymentsView.vue'),
        meta: {
          title: 'nav.payments',
          roles: ['admin', 'manager', 'analyst'],
          nav: { label: 'nav.payments', icon: Wallet, order: 28 },
        },
      },
      {
        path: 'payments/reconciliation',
        name: 'payment-reconciliation',
        component: () => import('../views/payments/ReconciliationView.vue'),
        meta: {
          title: 'nav.reconciliation',
          roles: ['admin', 'manager'],
          nav: { label: 'nav.reconciliation', icon: Money, order: 30 },
        },
      },
      {
        path: 'payments/orders/:orderId',
        name: 'order-payments',
        component: () => import('../views/payments/OrderPaymentsView.vue'),
        meta: { title: 'nav.payments' },
      },
      {
        path: 'analytics',
        name: 'analytics',
        component: () => import('../views/analytics/AnalyticsView.vue'),
        meta: {
          title: 'nav.analytics',
          roles: ['admin', 'manager', 'analyst'],
          nav: { label: 'nav.analytics', icon: DataAnalysis, order: 40 },
        },
      },
      {
        path: 'users',
        name: 'users',
        component: () => import('../views/admin/UsersView.vue'),
        meta: {
          title: 'nav.users',
          roles: ['admin'],
          nav: { label: 'nav.users', icon: User, group: 'nav.system', order: 100 },
        },
      },
      {
        path: 'customer-attributes',
        name: 'customer-attributes',
        component: () => import('../views/admin/AttributesView.vue'),
        meta: {
          title: 'nav.attributes',
          roles: ['admin'],
          nav: { label: 'nav.attributes', icon: CollectionTag, group: 'nav.system', order: 105 },
        },
      },
      {
        path: 'api-keys',
        name: 'api-keys',
        component: () => import('../views/admin/ApiKeysView.vue'),
        meta: {
          title: 'nav.apiKeys',
          roles: ['admin'],
          nav: { label: 'nav.apiKeys', icon: Key, group: 'nav.system', order: 110 },
        },
      },
      {
        path: 'audit',
        name: 'audit',
        component: () => import('../views/admin/AuditView.vue'),
        meta: {
          title: 'nav.audit',
          roles: ['admin'],
          nav: { label: 'nav.audit', icon: Tickets, group: 'nav.system', order: 120 },
        },
      },
      {
        path: 'settings/security',
        name: 'security-settings',
        component: () => import('../views/admin/SecuritySettingsView.vue'),
        meta: {
          title: 'nav.security',
          roles: ['admin'],
          nav: { label: 'nav.security', icon: Lock, group: 'nav.system', order: 130 },
        },
      },
      {
        path: 'forbidden',
        name: 'forbidden',
        component: () => import('../views/ForbiddenView.vue'),
        meta: { title: 'forbidden.title' },
      },
      {
        path: ':pathMatch(.*)*',
        name: 'not-found',
        component: () => import('../views/NotFoundView.vue'),
        meta: { title: 'notFound.title' },
      },
    ],
  },
]

export const router = createRouter({
  history: createWebHistory('/'),
  routes,
  scrollBehavior: () => ({ top: 0 }),
})

export function canOpen(route, user = session.user) {
  const roles = route.meta?.roles
  return !roles || Boolean(user && roles.includes(user.role))
}

/** Navigation entries the current user may open, grouped as the side menu shows them. */
export function navigationFor(user) {
  const entries = router
    .getRoutes()
    .filter((r) => r.meta?.nav && r.name && canOpen(r, user))
    .map((r) => ({ name: r.name, path: r.path, ...r.meta.nav }))
    .sort((a, b) => a.order - b.order)
  const sections = []
  for (const entry of entries) {
    const key = entry.group || null
    let section = sections.find((s) => s.group === key)
    if (!section) sections.push((section = { group: key, items: [] }))
    section.items.push(entry)
  }
  return sections
}

function loginRoute(to, reason) {
  const query = {}
  if (reason) query.reason = reason
  if (to.fullPath !== '/') query.redirect = to.fullPath
  return { name: 'login', query }
}

router.beforeEach(async (to) => {
  if (to.meta.public) {
    if (isAuthenticated() && (to.name === 'login' || to.name === 'register')) return { name: 'home' }
    return true
  }
  // a new tab takes the session of this browser's open tabs (api/tabs.js) before asking to sign in
  if (!isAuthenticated() && !(await resumeFromOpenTab())) {
    return loginRoute(to, sessionLossReason())
  }
  if (!session.user || !session.meEtag) {
    try {
      await fetchMe()
    } catch {
      // A lost session goes to the login page, saying why; anything else, keep what we have.
      if (!isAuthenticated()) return loginRoute(to, sessionLossReason() || 'expired')
    }
  }
  if (to.name === 'mfa-setup' && session.user && !session.user.mfa_setup_required) {
    return { name: 'profile', query: { tab: 'security' } }
  }
  if (session.user?.mfa_setup_required && !to.meta.allowDuringMfaSetup) {
    return { name: 'mfa-setup', query: to.fullPath !== '/' ? { redirect: to.fullPath } : {} }
  }
  if (!canOpen(to)) {
    return { name: 'forbidden', query: { from: to.fullPath } }
  }
  return true
})
