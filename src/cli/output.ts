/** Plain aligned columns, header first; empty cells shown as '-'. */
export function formatTable(header: string[], rows: string[][]): string {
  const cells = [header, ...rows.map((r) => r.map((c) => (c === '' ? '-' : c)))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function printLine(text: string): void {
  process.stdout.write(`${text}\n`);
}

/**
 * A table printed page by page as the rows are read: the header first, then each page's rows, columns as wide as
 * the widest cell seen so far (a later, wider cell widens the columns from its page on).
 */
export class TablePrinter {
  private widths: number[];
  private printed = false;

  constructor(private readonly header: string[]) {
    this.widths = header.map((h) => h.length);
  }

  page(rows: string[][]): void {
    const cells = rows.map((r) => r.map((c) => (c === '' ? '-' : c)));
    this.widths = this.widths.map((w, i) => Math.max(w, ...cells.map((r) => (r[i] ?? '').length)));
    const line = (r: string[]): string =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(this.widths[i] ?? 0)))
        .join('  ')
        .trimEnd();
    const lines = cells.map(line);
    if (!this.printed) lines.unshift(line(this.header));
    this.printed = true;
    if (lines.length > 0) process.stdout.write(`${lines.join('\n')}\n`);
  }

  /** Prints the header alone when no row came. */
  end(): void {
    if (!this.printed) this.page([]);
  }
}

/** A JSON array printed element by element as they are read (what printJson prints for the whole array). */
export class JsonArrayPrinter {
  private count = 0;

  page(items: readonly unknown[]): void {
    for (const item of items) {
      const text = JSON.stringify(item, null, 2).replace(/\n/g, '\n  ');
      process.stdout.write(`${this.count === 0 ? '[\n  ' : ',\n  '}${text}`);
      this.count++;
    }
  }

  end(): void {
    process.stdout.write(this.count === 0 ? '[]\n' : '\n]\n');
  }
}
