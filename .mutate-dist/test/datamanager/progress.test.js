import t from 'tap';
import { createTtyProgress, noProgress, progressFor } from '../../datamanager/progress.js';
function fakeTerminal(isTTY) {
    const stream = {
        isTTY,
        columns: 120,
        text: '',
        write(s) {
            stream.text += s;
            return true;
        },
    };
    return stream;
}
t.test('progress: a bar only on a terminal', async (t) => {
    t.equal(progressFor(fakeTerminal(false)), noProgress, 'logs and pipes get nothing');
    t.not(progressFor(fakeTerminal(true)), noProgress);
});
t.test('progress: the bar shows the phase and the detail, and stops cleanly', async (t) => {
    const term = fakeTerminal(true);
    const progress = createTtyProgress(term);
    progress.phase('balancing', 100);
    progress.update(50, '123 blocks');
    progress.stop();
    progress.stop();
    t.match(term.text, /datamanager balancing/);
    t.match(term.text, /50% 123 blocks/);
});
//# sourceMappingURL=progress.test.js.map