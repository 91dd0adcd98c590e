package dev.loadstone.safetensors;

import java.util.List;
import java.util.Map;

/**
 * A parsed and validated header.
 *
 * @param metadata the {@code __metadata__} map in header order, or {@code null} when absent
 * @param tensors the entries ordered by their byte ranges, that is, in file order (they cover
 *     the data section exactly)
 */
record Header(Map<String, String> metadata, List<TensorEntry> tensors) {}
