// Errors a user of the runtime can meet. Each message says what was wrong and what to do.

export class ComponentError extends Error {
  override name = "ComponentError";
}

/** The bytes are not a WebAssembly component at all. */
export class NotAComponentError extends ComponentError {
  override name = "NotAComponentError";
}

/** The component does not target the `dormant:host/partition` world. */
export class WrongWorldError extends ComponentError {
  override name = "WrongWorldError";
}

/** The engine could not translate or compile a component that looked valid. */
export class ComponentPrepareError extends ComponentError {
  override name = "ComponentPrepareError";
}

/** Guest code trapped (or threw) while the host was instantiating or calling it. */
export class GuestTrapError extends Error {
  override name = "GuestTrapError";
  constructor(
    message: string,
    readonly phase: "instantiate" | "activate" | "call",
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** `dormant build` could not build a guest; the message says what to change. */
export class GuestBuildError extends Error {
  override name = "GuestBuildError";
}
