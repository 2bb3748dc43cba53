// Bytes of the files under a folder (0 when it is missing), for the disk-use figures.
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";

export async function treeBytesOf(dir: string): Promise<number> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
  const sizes = await Promise.all(
    entries
      .filter((e) => e.isFile())
      .map((e) =>
        stat(join(e.parentPath, e.name)).then(
          (s) => s.size,
          () => 0, // removed while we looked
        ),
      ),
  );
  return sizes.reduce((sum, size) => sum + size, 0);
}
