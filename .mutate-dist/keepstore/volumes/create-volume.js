import { KeepError } from '../../shared/errors.js';
import { createDirectoryVolume } from './directory-volume.js';
import { createMemoryVolume } from './memory-volume.js';
/**
 * Builds the driver a config entry names (not opened yet: call `open()`).
 * A directory volume without a root is a KEEP_CONFIG error.
 */
export function createVolume(config, options = {}) {
    const clock = options.now ? { now: options.now } : {};
    if (config.driver === 'memory')
        return createMemoryVolume({ uuid: config.uuid, readOnly: config.readOnly, ...clock });
    if (!config.root)
        throw new KeepError('KEEP_CONFIG', `volume ${config.uuid}: driver directory needs a root`);
    return createDirectoryVolume({ uuid: config.uuid, root: config.root, readOnly: config.readOnly, ...clock });
}
//# sourceMappingURL=create-volume.js.map