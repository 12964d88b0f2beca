/** Largest block a volume accepts (64 MiB). */
export const MAX_BLOCK_SIZE = 64 * 1024 * 1024;
//# sourceMappingURL=volume.js.map