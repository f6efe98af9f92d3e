#pragma once
// Binary archives over plain byte buffers: what every task argument and result goes through.

#include <boost/archive/binary_iarchive.hpp>
#include <boost/archive/binary_oarchive.hpp>

#include <cstddef>
#include <streambuf>
#include <vector>

namespace mproc::detail {

using output_archive = boost::archive::binary_oarchive;
using input_archive = boost::archive::binary_iarchive;

// Both sides run the same binary, so the archive header (library version, type sizes) adds
// nothing but bytes.
inline constexpr unsigned archive_flags = boost::archive::no_header | boost::archive::no_codecvt;

// A stream buffer that appends everything written to it to a vector.
class vector_sink final : public std::streambuf {
 public:
  explicit vector_sink(std::vector<char>& out) : out_(out) {}

 protected:
  int_type overflow(int_type c) override {
    if (!traits_type::eq_int_type(c, traits_type::eof()))
      out_.push_back(traits_type::to_char_type(c));
    return traits_type::not_eof(c);
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    out_.insert(out_.end(), s, s + n);
    return n;
  }

 private:
  std::vector<char>& out_;
};

// A stream buffer that reads from a fixed span of bytes; reading past its end is end-of-file.
class span_source final : public std::streambuf {
 public:
  span_source(const char* data, std::size_t size) {
    char* p =
        const_cast<char*>(data);  // NOLINT: std::streambuf wants char*; the area is never written.
    setg(p, p, p + size);
  }
};

}  // namespace mproc::detail
