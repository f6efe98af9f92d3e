#pragma once
// Task identity, registration and invocation: what turns `submit<F>` into bytes and back.

#include <mproc/detail/codec.hpp>
#include <mproc/detail/names.hpp>
#include <mproc/serializable.hpp>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>

namespace mproc::detail {

/// Returns the chunk size `map` uses when none is given: about four chunks per worker, few
/// enough messages to amortise their cost and enough chunks to balance uneven items.
constexpr std::size_t default_chunksize(std::size_t items, std::size_t workers) noexcept {
  const std::size_t parts = 4 * (workers == 0 ? 1 : workers);
  return items == 0 ? 1 : (items + parts - 1) / parts;
}

/// Returns the 64-bit FNV-1a digest of `s`: the key a task travels under.
constexpr std::uint64_t digest(std::string_view s) noexcept {
  std::uint64_t h = 14695981039346656037ULL;
  for (const char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

template <class Fn>
struct function_traits {
  static constexpr bool is_function = false;
};
template <class R, class... P>
struct function_traits<R (*)(P...)> {
  static constexpr bool is_function = true;
  using result = R;
  using arguments = std::tuple<std::remove_cvref_t<P>...>;
  static constexpr std::size_t arity = sizeof...(P);
  static constexpr bool has_mutable_reference =
      ((std::is_lvalue_reference_v<P> && !std::is_const_v<std::remove_reference_t<P>>) || ...);
};
template <class R, class... P>
struct function_traits<R (*)(P...) noexcept> : function_traits<R (*)(P...)> {};

template <auto F>
using traits_of = function_traits<decltype(F)>;
template <auto F>
using result_of = std::remove_cvref_t<typename traits_of<F>::result>;

// Never defined: a failed check derives from one, so the compiler's first error reads
// "invalid use of incomplete type 'struct mproc::detail::argument_type_is_not_serializable<Model>'"
// and the static_assert after it explains.
template <class T>
struct argument_type_is_not_serializable;
template <class T>
struct result_type_is_not_serializable;

template <class T, bool = serializable<T>>
struct argument_type_check {
  static constexpr bool ok = true;
};
template <class T>
struct argument_type_check<T, false> : argument_type_is_not_serializable<T> {
  static constexpr bool ok = false;
  static_assert(serializable<T>,
                "mproc: a task argument type is not serializable (its name is in the first "
                "error). Give it a Boost.Serialization serialize() (member or free), or pass "
                "serializable data and build the object in the worker.");
};

template <class T, bool = std::is_void_v<T> || serializable<T>>
struct result_type_check {
  static constexpr bool ok = true;
};
template <class T>
struct result_type_check<T, false> : result_type_is_not_serializable<T> {
  static constexpr bool ok = false;
  static_assert(serializable<T>,
                "mproc: a task's result type is not serializable (its name is in the first "
                "error). Give it a Boost.Serialization serialize() (member or free), or return "
                "serializable data.");
};

template <class T>
struct default_constructible_check {
  static_assert(std::is_default_constructible_v<T>,
                "mproc: task argument and result types must be default-constructible (the "
                "receiving side builds the value before reading it).");
  static constexpr bool ok = true;
};

template <class Tuple>
struct arguments_check;
template <class... P>
struct arguments_check<std::tuple<P...>> {
  static constexpr bool ok =
      ((argument_type_check<P>::ok && default_constructible_check<P>::ok) && ...);
};

/// Checks at compile time that `F` can be a task; true when it can (otherwise compilation stops).
template <auto F>
constexpr bool check_task() {
  static_assert(traits_of<F>::is_function,
                "mproc: a task must be a function at namespace scope or a static member "
                "function, given as a template argument: pool.submit<my_function>(args...)");
  if constexpr (traits_of<F>::is_function) {
    static_assert(!traits_of<F>::has_mutable_reference,
                  "mproc: a task cannot take a parameter by non-const reference: changes made in "
                  "the worker would not reach the caller. Return the value instead.");
    using result = result_of<F>;
    if constexpr (std::is_void_v<result>) {
      return arguments_check<typename traits_of<F>::arguments>::ok;
    } else {
      return arguments_check<typename traits_of<F>::arguments>::ok &&
             result_type_check<result>::ok && default_constructible_check<result>::ok;
    }
  }
  return false;
}

/// Runs `count` calls of `F`, reading their arguments from the `size` bytes at `data` and
/// appending their results to `out`; with `lent`, a large block of a single result may stay
/// in the result's memory instead (see `lent_block`).
using invoker = void (*)(const char* data, std::size_t size, std::vector<char>& out,
                         std::uint32_t count, lent_block* lent);

/// Records a task under `name` (its key is the name's digest, xor `salt`); returns the key.
/// Two different functions under one key are reported when a pool or `init` starts.
std::uint64_t register_task(std::string_view name, invoker run, std::uint64_t salt = 0) noexcept;

// Thrown inside a worker when decoding arguments or encoding a result fails, so that the
// failure is reported as a serialization_error and not as an exception of the task. `cause` is
// whatever the archive or the type's own `load`/`save` threw, standard or not.
struct decode_failure {
  std::exception_ptr cause;
};
struct encode_failure {
  std::exception_ptr cause;
};

// Builds and reads one call's arguments; building them counts as decoding them (both happen
// before the task runs), so a failure in either is a decode_failure.
template <auto F, class Reader>
typename traits_of<F>::arguments read_arguments(Reader& in) {
  using arguments = typename traits_of<F>::arguments;
  try {
    arguments a;
    std::apply([&in](auto&... field) { (get(in, field), ...); }, a);
    return a;
  } catch (...) {
    throw decode_failure{std::current_exception()};
  }
}

/// Calls `f` with a reader of `F`'s arguments from the `size` bytes at `data`; a reader that
/// cannot be set up is a decode_failure.
template <auto F, class Fn>
void with_argument_reader(const char* data, std::size_t size, Fn&& f) {
  constexpr bool raw = raw_arguments<typename traits_of<F>::arguments>;
  bool reading = false;
  try {
    with_reader<raw>(data, size, [&](auto& in) {
      reading = true;
      f(in);
    });
  } catch (...) {
    if (reading) throw;
    throw decode_failure{std::current_exception()};
  }
}

// Runs one call of `F` whose result is one block, and lends the block if it is large enough:
// `out` gets only its element count. Returns false (nothing run) where a call is not that.
template <auto F, class Reader>
bool invoke_lending(Reader& in, std::vector<char>& out, std::uint32_t count, lent_block* lent) {
  using result = result_of<F>;
  if constexpr (raw_block<result>::value) {
    if (lent == nullptr || count != 1) return false;
    auto r = std::make_shared<const result>(std::apply(F, read_arguments<F>(in)));
    const std::size_t bytes = r->size() * sizeof(typename result::value_type);
    try {
      if (bytes < lent->min_size) {
        with_writer<true>(out, [&](auto& writer) { put(writer, *r); });
        return true;
      }
      const auto elements = static_cast<std::uint64_t>(r->size());
      const auto* n = reinterpret_cast<const char*>(&elements);
      out.insert(out.end(), n, n + sizeof elements);
    } catch (...) {
      throw encode_failure{std::current_exception()};
    }
    lent->data = reinterpret_cast<const char*>(r->data());
    lent->size = bytes;
    lent->at = out.size();
    lent->owner = std::move(r);
    return true;
  } else {
    return false;
  }
}

template <auto F>
void invoke(const char* data, std::size_t size, std::vector<char>& out, std::uint32_t count,
            lent_block* lent) {
  using result = result_of<F>;
  with_argument_reader<F>(data, size, [&](auto& in) {
    if constexpr (std::is_void_v<result>) {
      for (std::uint32_t i = 0; i < count; ++i) std::apply(F, read_arguments<F>(in));
    } else {
      if (invoke_lending<F>(in, out, count, lent)) return;
      with_writer<raw_codec<result>>(out, [&](auto& writer) {
        for (std::uint32_t i = 0; i < count; ++i) {
          const result r = std::apply(F, read_arguments<F>(in));
          try {
            put(writer, r);
          } catch (...) {
            throw encode_failure{std::current_exception()};
          }
        }
      });
    }
  });
}

/// Keeps `object` as this worker's state, replacing any previous one (see `worker_state`).
void set_worker_state(std::shared_ptr<void> object, const std::type_info& type);

/// Runs the initializer `F` once: what it returns becomes this worker's state.
template <auto F>
void initialize(const char* data, std::size_t size, std::vector<char>& /*out*/,
                std::uint32_t /*count*/, lent_block* /*lent*/) {
  using result = std::remove_cvref_t<typename traits_of<F>::result>;
  with_argument_reader<F>(data, size, [](auto& in) {
    auto args = read_arguments<F>(in);
    if constexpr (!std::is_void_v<result>) {
      // `new` from the returned prvalue: the state need not be copyable or even movable.
      std::shared_ptr<result> state(new result(std::apply(F, std::move(args))));
      set_worker_state(std::move(state), typeid(result));
    } else {
      std::apply(F, std::move(args));
    }
  });
}

/// Distinguishes an initializer's key from the same function's key as a task.
inline constexpr std::uint64_t initializer_salt = 0x696e697469616c69ULL;  // "initiali"

/// Registers `F` during static initialisation of every process running this binary.
template <auto F>
struct task_entry {
  static inline const std::uint64_t key = register_task(task_name<F>(), &invoke<F>);
};

/// Registers `F` as a worker initializer, like `task_entry`.
template <auto F>
struct initializer_entry {
  static inline const std::uint64_t key =
      register_task(task_name<F>(), &initialize<F>, initializer_salt);
};

// Converts one argument to its parameter type (if it is not that already) and writes it.
template <class P, class Writer, class A>
void write_argument(Writer& out, A&& arg) {
  const P& value = std::forward<A>(arg);
  put(out, value);
}

/// Writes one call's arguments, converted to the parameter types of `F`, to `out`.
template <auto F, class Writer, class... A>
void write_arguments(Writer& out, A&&... args) {
  using arguments = typename traits_of<F>::arguments;
  static_assert(sizeof...(A) == std::tuple_size_v<arguments>,
                "mproc: wrong number of arguments for this task");
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (write_argument<std::tuple_element_t<I, arguments>>(out, std::forward<A>(args)), ...);
  }
  (std::index_sequence_for<A...>{});
}

/// How `map` and `imap` pass an element of their input: as the task's one argument.
struct one_argument {
  template <auto F, class Element>
  static constexpr void check() {
    static_assert(traits_of<F>::arity == 1,
                  "mproc: map<F> needs a function that takes exactly one argument; for a "
                  "function of several, pass tuples of its arguments to starmap<F>");
  }
  template <auto F, class Writer, class Element>
  static void write(Writer& out, Element&& element) {
    write_arguments<F>(out, std::forward<Element>(element));
  }
};

template <class T>
concept tuple_like = requires {
  std::tuple_size<std::remove_cvref_t<T>>::value;
};

/// How `starmap` passes an element of its input: a tuple (or pair) of the task's arguments.
struct tuple_of_arguments {
  template <auto F, class Element>
  static constexpr void check() {
    static_assert(tuple_like<Element>,
                  "mproc: starmap<F> needs a range of tuples (or pairs) of F's arguments");
    if constexpr (tuple_like<Element>) {
      static_assert(std::tuple_size_v<std::remove_cvref_t<Element>> == traits_of<F>::arity,
                    "mproc: each tuple given to starmap<F> must hold one value per argument of F");
    }
  }
  template <auto F, class Writer, class Element>
  static void write(Writer& out, Element&& element) {
    std::apply([&out](auto&&... a) { write_arguments<F>(out, std::forward<decltype(a)>(a)...); },
               std::forward<Element>(element));
  }
};

/// Calls `f` with a writer that appends `F`'s arguments to `out` in the format the worker reads.
template <auto F, class Fn>
void with_argument_writer(std::vector<char>& out, Fn&& f) {
  with_writer<raw_arguments<typename traits_of<F>::arguments>>(out, std::forward<Fn>(f));
}

}  // namespace mproc::detail
