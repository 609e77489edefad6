// Views ask for the page to be drawn again; app.js does the drawing. (A
// view importing app.js would make an import cycle.)

let draw = () => {};

/** Registers the function that redraws the current view. */
export const onRedraw = (f) => { draw = f; };

/** Redraws the current view from the store. */
export const redraw = () => draw();
