#include "backends/credentials.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <utility>
#include <vector>

namespace strata {
namespace {

// The keys of one [profile] section that matter here; empty when absent.
struct ProfileKeys {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;
};

std::string_view Trim(std::string_view s) {
  constexpr std::string_view kBlank = " \t\r\n\f\v";
  const size_t begin = s.find_first_not_of(kBlank);
  if (begin == std::string_view::npos) return {};
  const size_t end = s.find_last_not_of(kBlank);
  return s.substr(begin, end - begin + 1);
}

std::string LowerAscii(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Parses the INI dialect of ~/.aws/credentials: "[name]" section headers, "key = value" lines
// (blanks around '=' optional, keys case-insensitive), whole-line comments starting with '#' or
// ';'. Keys outside a section, unknown keys and malformed lines are ignored; a repeated section
// or key overrides the earlier one. Values are taken verbatim after trimming (no inline
// comments), since secrets may contain any printable character.
std::map<std::string, ProfileKeys> ParseCredentialsFile(std::string_view text) {
  constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";
  if (text.starts_with(kUtf8Bom)) text.remove_prefix(kUtf8Bom.size());

  std::map<std::string, ProfileKeys> profiles;
  ProfileKeys* current = nullptr;
  while (!text.empty()) {
    const size_t eol = text.find('\n');
    std::string_view line = Trim(text.substr(0, eol));
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);

    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    if (line.front() == '[') {
      const size_t close = line.find(']');
      current = close == std::string_view::npos
                    ? nullptr
                    : &profiles[std::string(Trim(line.substr(1, close - 1)))];
      continue;
    }
    const size_t eq = line.find('=');
    if (current == nullptr || eq == std::string_view::npos) continue;
    const std::string key = LowerAscii(Trim(line.substr(0, eq)));
    std::string value(Trim(line.substr(eq + 1)));
    if (key == "aws_access_key_id") {
      current->access_key_id = std::move(value);
    } else if (key == "aws_secret_access_key") {
      current->secret_access_key = std::move(value);
    } else if (key == "aws_session_token") {
      current->session_token = std::move(value);
    }
  }
  return profiles;
}

// The file's contents, or nullopt when there is no such file.
Result<std::optional<std::string>> ReadFileIfExists(const std::string& path) {
  std::error_code ec;
  const std::filesystem::file_status st = std::filesystem::status(path, ec);
  if (st.type() == std::filesystem::file_type::not_found) return std::optional<std::string>();
  if (ec) return Status::Io("cannot read credentials file " + path + ": " + ec.message());
  if (std::filesystem::is_directory(st)) {
    return Status::Io("credentials file " + path + " is a directory");
  }

  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    return Status::Io("cannot read credentials file " + path + ": " + std::strerror(errno));
  }
  std::string contents;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) contents.append(buf, n);
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) return Status::Io("error reading credentials file " + path);
  return std::optional<std::string>(std::move(contents));
}

std::string JoinTried(const std::vector<std::string>& tried) {
  std::string out = "no AWS credentials found; tried: ";
  for (size_t i = 0; i < tried.size(); ++i) {
    if (i > 0) out.append("; ");
    out.append(tried[i]);
  }
  return out;
}

}  // namespace

EnvLookup ProcessEnvironment() {
  return [](std::string_view name) -> std::optional<std::string> {
    const char* value = std::getenv(std::string(name).c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

Result<Credentials> ResolveCredentials(const CredentialOptions& options, const EnvLookup& env) {
  // Empty counts as unset everywhere, as for the AWS CLI.
  auto get_env = [&env](std::string_view name) -> std::string {
    std::optional<std::string> value = env ? env(name) : std::nullopt;
    return value.value_or("");
  };
  std::vector<std::string> tried;

  // 1. Explicit options.
  const bool option_id = !options.access_key_id.empty();
  const bool option_secret = !options.secret_access_key.empty();
  if (option_id && option_secret) {
    return Credentials{options.access_key_id, options.secret_access_key, options.session_token,
                       "command-line options"};
  }
  if (option_id) {
    return Status::InvalidArgument(
        "an access key id was given in the options but no secret access key");
  }
  if (option_secret) {
    return Status::InvalidArgument(
        "a secret access key was given in the options but no access key id");
  }
  if (!options.session_token.empty()) {
    return Status::InvalidArgument(
        "a session token was given in the options but no access key id and secret access key");
  }
  tried.push_back("options (no access key given)");

  std::string profile = options.profile;
  std::string profile_origin = "the options";
  if (profile.empty()) {
    profile = get_env("AWS_PROFILE");
    profile_origin = "AWS_PROFILE";
  }
  const bool explicit_profile = !profile.empty();
  if (!explicit_profile) profile = "default";

  // 2. Environment, unless a profile was named in the options.
  if (!options.profile.empty()) {
    tried.push_back("environment (skipped because profile " + profile + " was asked for)");
  } else {
    const std::string env_id = get_env("AWS_ACCESS_KEY_ID");
    const std::string env_secret = get_env("AWS_SECRET_ACCESS_KEY");
    if (!env_id.empty() && !env_secret.empty()) {
      return Credentials{env_id, env_secret, get_env("AWS_SESSION_TOKEN"),
                         "the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)"};
    }
    if (!env_id.empty()) {
      return Status::InvalidArgument("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");
    }
    if (!env_secret.empty()) {
      return Status::InvalidArgument("AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not");
    }
    tried.push_back("environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY not set)");
  }

  // 3. Shared credentials file.
  const std::string home = get_env("HOME");
  std::string path = get_env("AWS_SHARED_CREDENTIALS_FILE");
  if (path.starts_with("~/") && !home.empty()) path = home + path.substr(1);
  if (path.empty() && !home.empty()) path = home + "/.aws/credentials";
  const std::string asked_by = " (asked for by " + profile_origin + ")";
  if (path.empty()) {
    if (explicit_profile) {
      return Status::NotFound("profile " + profile +
                              " not found: no credentials file, neither "
                              "AWS_SHARED_CREDENTIALS_FILE nor HOME is set" +
                              asked_by);
    }
    tried.push_back("shared credentials file (neither AWS_SHARED_CREDENTIALS_FILE nor HOME set)");
    return Status::NotFound(JoinTried(tried));
  }

  STRATA_ASSIGN_OR_RETURN(std::optional<std::string> contents, ReadFileIfExists(path));
  if (!contents.has_value()) {
    if (explicit_profile) {
      return Status::NotFound("profile " + profile + " not found in " + path +
                              " (the file does not exist)" + asked_by);
    }
    tried.push_back("shared credentials file " + path + " (does not exist)");
    return Status::NotFound(JoinTried(tried));
  }

  const std::map<std::string, ProfileKeys> profiles = ParseCredentialsFile(*contents);
  const auto it = profiles.find(profile);
  if (it == profiles.end()) {
    if (explicit_profile) {
      return Status::NotFound("profile " + profile + " not found in " + path + asked_by);
    }
    tried.push_back("shared credentials file " + path + " (no profile " + profile + ")");
    return Status::NotFound(JoinTried(tried));
  }

  const ProfileKeys& keys = it->second;
  const std::string where = "profile " + profile + " in " + path;
  if (!keys.access_key_id.empty() && !keys.secret_access_key.empty()) {
    return Credentials{keys.access_key_id, keys.secret_access_key, keys.session_token,
                       "shared credentials file " + path + ", profile " + profile};
  }
  if (!keys.access_key_id.empty()) {
    return Status::InvalidArgument(where + " has aws_access_key_id but no aws_secret_access_key");
  }
  if (!keys.secret_access_key.empty()) {
    return Status::InvalidArgument(where + " has aws_secret_access_key but no aws_access_key_id");
  }
  if (explicit_profile) {
    return Status::NotFound(where + " has no aws_access_key_id and aws_secret_access_key" +
                            asked_by);
  }
  tried.push_back("shared credentials file " + path + " (profile " + profile +
                  " has no aws_access_key_id and aws_secret_access_key)");
  return Status::NotFound(JoinTried(tried));
}

std::string MaskAccessKey(std::string_view access_key_id) {
  constexpr size_t kShown = 4;
  if (access_key_id.size() <= kShown) return std::string(access_key_id.size(), '*');
  return std::string(access_key_id.size() - kShown, '*') +
         std::string(access_key_id.substr(access_key_id.size() - kShown));
}

}  // namespace strata
