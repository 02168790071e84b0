export const ROLES = ['admin', 'manager', 'sales', 'analyst']
