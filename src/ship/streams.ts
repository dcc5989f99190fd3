/**
 * Iterates a web ReadableStream chunk by chunk (DOM typings lack async iteration).
 * `onReader` receives the reader, for an owner that must be able to cancel it.
 */
export async function* chunksOf<T>(
  stream: ReadableStream<T>,
  onReader?: (reader: ReadableStreamDefaultReader<T>) => void,
): AsyncGenerator<T> {
  const reader = stream.getReader();
  onReader?.(reader);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}
