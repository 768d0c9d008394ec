/*
 * Text for Plotly, shown as written. Plotly reads a subset of HTML in trace names,
 * annotations and hover labels (<a href>, <b>, <br>…): a sensor or a rule named
 * `<a href="…">` would become a link on the operators' charts. Escaped, it stays text.
 */
export function plotText(text) {
  return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
