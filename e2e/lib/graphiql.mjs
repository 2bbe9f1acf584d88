// Drives a GraphiQL page (gqlgen's Playground) the way a person does: put
// an operation in the editor, press Run, read the response pane.
export class GraphiQLPage {
  constructor(page) {
    this.page = page;
  }

  async open(url) {
    await this.page.goto(url);
    await this.page.locator('.graphiql-query-editor .CodeMirror').waitFor({ timeout: 30_000 });
  }

  /** Replaces the editor's content, as a paste would. */
  async setOperation(text) {
    await this.page.locator('.graphiql-query-editor .CodeMirror').click();
    await this.page.keyboard.press('ControlOrMeta+A');
    await this.page.keyboard.press('Delete');
    await this.page.keyboard.insertText(text);
  }

  async run() {
    await this.page.locator('.graphiql-execute-button').click();
  }

  /** The response pane's whole text (CodeMirror renders only what is on screen). */
  async response() {
    return this.page.evaluate(() => document.querySelector('.graphiql-response .CodeMirror')?.CodeMirror.getValue() ?? '');
  }

  /** Waits until the response pane's text matches re; returns the text. */
  async waitForResponse(re, timeout = 15_000) {
    const handle = await this.page.waitForFunction(
      ([source, flags]) => {
        const text = document.querySelector('.graphiql-response .CodeMirror')?.CodeMirror.getValue() ?? '';
        return new RegExp(source, flags).test(text) && text;
      },
      [re.source, re.flags],
      { timeout, polling: 50 },
    );
    return handle.jsonValue();
  }
}
