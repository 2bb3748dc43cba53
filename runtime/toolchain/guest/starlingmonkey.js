// StarlingMonkey has these, but with WASI disabled they trap with a bare `unreachable`:
// they throw an error that names them instead.
function unavailable(name, hint) {
  return () => {
    throw new Error(`${name} is not available in StarlingMonkey guests: ${hint}.`);
  };
}

const TIMERS = "a guest runs only during a call; register a background task (`after` or `every`) instead";
export const setTimeout = unavailable("setTimeout", TIMERS);
export const setInterval = unavailable("setInterval", TIMERS);
export const fetch = unavailable("fetch", "a guest reaches the outside only through dormant:host");
export const performance = { now: unavailable("performance.now()", "there is no monotonic clock; use Date.now() or the task event's firedAt") };
