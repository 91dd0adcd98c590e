package dev.loadstone.cli;

import java.io.IOException;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Text in and out of token ids for {@code generate}, through the llama module's tokenizer
 * ({@code dev.loadstone.llama.tokenizer.Tokenizer}: {@code static load(Path tokenizerJson)},
 * {@code int[] encode(String)} without special tokens, {@code String decode(int[])}). The
 * tokenizer is looked up by name, so that this command builds, and runs on token ids, with or
 * without it; a build without it says so when text is asked for.
 */
final class TextTokenizer {
  static final String CLASS_NAME = "dev.loadstone.llama.tokenizer.Tokenizer";
  static final String FILE_NAME = "tokenizer.json";

  private final Object tokenizer;
  private final Method encode;
  private final Method decode;

  private TextTokenizer(Object tokenizer, Method encode, Method decode) {
    this.tokenizer = tokenizer;
    this.encode = encode;
    this.decode = decode;
  }

  /**
   * The tokenizer of the model in {@code directory}.
   *
   * @throws UnavailableException if this build has no tokenizer, or the directory has no
   *     {@code tokenizer.json}
   * @throws IOException if the tokenizer cannot be read
   */
  static TextTokenizer load(Path directory) throws IOException, UnavailableException {
    Class<?> type;
    try {
      type = Class.forName(CLASS_NAME, true, TextTokenizer.class.getClassLoader());
    } catch (ClassNotFoundException e) {
      throw new UnavailableException("this build has no tokenizer: give the prompt as --prompt-ids"
          + " and print the result with --print-ids");
    }
    Path file = directory.resolve(FILE_NAME);
    if (!Files.isRegularFile(file)) {
      throw new UnavailableException(directory + " has no " + FILE_NAME
          + " for text: give the prompt as --prompt-ids and print the result with --print-ids");
    }
    try {
      Method load = type.getMethod("load", Path.class);
      Method encode = type.getMethod("encode", String.class);
      Method decode = type.getMethod("decode", int[].class);
      return new TextTokenizer(call(load, null, file), encode, decode);
    } catch (NoSuchMethodException e) {
      throw new UnavailableException("this build's tokenizer lacks " + e.getMessage());
    }
  }

  /** The token ids of {@code text}, no special tokens added. */
  int[] encode(String text) throws IOException {
    return (int[]) call(encode, tokenizer, text);
  }

  /** The text of {@code ids}. */
  String decode(int[] ids) throws IOException {
    return (String) call(decode, tokenizer, (Object) ids);
  }

  /**
   * Text for tokens as they come: each call returns what the tokens so far add to the text, and
   * holds back a character whose bytes are not all there yet.
   */
  Stream stream() {
    return new Stream();
  }

  final class Stream {
    private int[] ids = new int[16];
    private int count;
    private int printed;

    /** The new text that {@code token} completes; may be empty. */
    String next(int token) throws IOException {
      if (count == ids.length) {
        ids = Arrays.copyOf(ids, 2 * count);
      }
      ids[count++] = token;
      String text = decode(Arrays.copyOf(ids, count));
      if (text.endsWith("\uFFFD") || text.length() < printed) {
        return "";
      }
      String added = text.substring(printed);
      printed = text.length();
      return added;
    }
  }

  private static Object call(Method method, Object target, Object... args) throws IOException {
    try {
      return method.invoke(target, args);
    } catch (InvocationTargetException e) {
      Throwable cause = e.getCause();
      if (cause instanceof IOException io) {
        throw io;
      }
      if (cause instanceof RuntimeException runtime) {
        throw runtime;
      }
      if (cause instanceof Error error) {
        throw error;
      }
      throw new IOException(cause);
    } catch (IllegalAccessException e) {
      throw new IllegalStateException(e);
    }
  }

  /** Text cannot be handled: no tokenizer in this build, or none in the model directory. */
  static final class UnavailableException extends Exception {
    private static final long serialVersionUID = 1L;

    UnavailableException(String message) {
      super(message);
    }
  }
}
