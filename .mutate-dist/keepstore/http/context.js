import { tokenFromAuthorization, requireToken } from '../../shared/auth.js';
export function tokenOf(ctx) {
    return tokenFromAuthorization(ctx.get('authorization') || undefined);
}
/** admin = the request's token equals systemRootToken (constant time): none → 401, other → 403. */
export function requireAdmin(ctx, deps) {
    requireToken(ctx.state.token, deps.keepstore.cluster.systemRootToken);
}
//# sourceMappingURL=context.js.map