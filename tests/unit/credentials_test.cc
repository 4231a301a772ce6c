#include "backends/credentials.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

namespace strata {
namespace {

namespace fs = std::filesystem;

constexpr char kFileSecret[] = "fileSECRETfileSECRETfileSECRETfileSECRET";
constexpr char kProdSecret[] = "prodSECRETprodSECRETprodSECRETprodSECRET";
constexpr char kEnvSecret[] = "envSECRETenvSECRETenvSECRETenvSECRET";

// A home directory of its own for each test, and an environment that is a plain map: the real
// environment and home directory are never consulted.
class CredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "strata-credentials-test-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    home_ = tmpl;
    env_vars_["HOME"] = home_.string();
  }

  void TearDown() override {
    std::error_code ec;
    fs::remove_all(home_, ec);
  }

  EnvLookup Env() const {
    return [vars = env_vars_](std::string_view name) -> std::optional<std::string> {
      auto it = vars.find(std::string(name));
      if (it == vars.end()) return std::nullopt;
      return it->second;
    };
  }

  fs::path DefaultCredentialsPath() const { return home_ / ".aws" / "credentials"; }

  void WriteFile(const fs::path& path, const std::string& text) {
    fs::create_directories(path.parent_path());
    std::ofstream out(path, std::ios::binary);
    out << text;
    ASSERT_TRUE(out.good());
  }

  // The usual two-profile file at $HOME/.aws/credentials.
  void WriteDefaultFile() {
    WriteFile(DefaultCredentialsPath(), std::string("[default]\n"
                                                    "aws_access_key_id = AKIDFILEDEFAULT\n"
                                                    "aws_secret_access_key = ") +
                                            kFileSecret +
                                            "\n"
                                            "\n"
                                            "[prod]\n"
                                            "aws_access_key_id = AKIDFILEPROD\n"
                                            "aws_secret_access_key = " +
                                            kProdSecret +
                                            "\n"
                                            "aws_session_token = prodTOKEN==\n");
  }

  void SetEnvKeys() {
    env_vars_["AWS_ACCESS_KEY_ID"] = "AKIDENV";
    env_vars_["AWS_SECRET_ACCESS_KEY"] = kEnvSecret;
  }

  Result<Credentials> Resolve(const CredentialOptions& options = {}) {
    return ResolveCredentials(options, Env());
  }

  fs::path home_;
  std::map<std::string, std::string> env_vars_;
};

// Credentials.source is shown to humans and logged: it must never carry a secret.
void ExpectSourceClean(const Credentials& creds) {
  EXPECT_FALSE(creds.source.empty());
  EXPECT_EQ(creds.source.find(creds.secret_access_key), std::string::npos) << creds.source;
  if (!creds.session_token.empty()) {
    EXPECT_EQ(creds.source.find(creds.session_token), std::string::npos) << creds.source;
  }
  for (const char* secret : {kFileSecret, kProdSecret, kEnvSecret, "optSECRET"}) {
    EXPECT_EQ(creds.source.find(secret), std::string::npos) << creds.source;
  }
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST_F(CredentialsTest, ExplicitOptionsWinOverEnvironmentAndFile) {
  SetEnvKeys();
  WriteDefaultFile();
  CredentialOptions options{"AKIDOPT", "optSECRET", "optTOKEN", ""};
  Result<Credentials> creds = Resolve(options);
  ASSERT_TRUE(creds.ok()) << creds.status().ToString();
  EXPECT_EQ(creds->access_key_id, "AKIDOPT");
  EXPECT_EQ(creds->secret_access_key, "optSECRET");
  EXPECT_EQ(creds->session_token, "optTOKEN");
  EXPECT_EQ(creds->source, "command-line options");
  ExpectSourceClean(*creds);
}

TEST_F(CredentialsTest, ExplicitKeyIdWithoutSecretIsInvalid) {
  SetEnvKeys();
  Result<Credentials> creds = Resolve({"AKIDOPT", "", "", ""});
  ASSERT_FALSE(creds.ok());
  EXPECT_EQ(creds.status().kind(), ErrorKind::kInvalidArgument);
  EXPECT_TRUE(Contains(creds.status().message(), "no secret access key"))
      << creds.status().message();
}

TEST_F(CredentialsTest, ExplicitSecretWithoutKeyIdIsInvalidAndNotEchoed) {
  Result<Credentials> creds = Resolve({"", "optSECRET", "", ""});
  ASSERT_FALSE(creds.ok());
  EXPECT_EQ(creds.status().kind(), ErrorKind::kInvalidArgument);
  EXPECT_TRUE(Contains(creds.status().message(), "no access key id")) << creds.status().message();
  EXPECT_FALSE(Contains(creds.status().ToString(), "optSECRET"));
}

TEST_F(CredentialsTest, ExplicitSessionTokenAloneIsInvalid) {
  SetEnvKeys();
  Result<Credentials> creds = Resolve({"", "", "optTOKEN", ""});
  ASSERT_FALSE(creds.ok());
  EXPECT_EQ(creds.status().kind(), ErrorKind::kInvalidArgument);
}

TEST_F(CredentialsTest, EnvironmentWithSessionToken) {
  SetEnvKeys();
  env_vars_["AWS_SESSION_TOKEN"] = "envTOKEN";
  WriteDefaultFile();
  Result<Credentials> creds = Resolve();
  ASSERT_TRUE(creds.ok()) << creds.status().ToString();
  EXPECT_EQ(creds->access_key_id, "AKIDENV");
  EXPECT_EQ(creds->secret_access_key, kEnvSecret);
  EXPECT_EQ(creds->session_token, "envTOKEN");
  EXPECT_EQ(creds->source, "the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)");
  ExpectSourceClean(*creds);
}

TEST_F(CredentialsTest, EnvironmentWithoutSessionToken) {
  SetEnvKeys();
  Result<Credentials> creds = Resolve();
  ASSERT_TRUE(creds.ok()) << creds.status().ToString();
  EXPECT_EQ(creds->session_token, "");
}

TEST_F(CredentialsTest, EnvironmentKeyIdWithoutSecretIsInvalid) {
  env_vars_["AWS_ACCESS_KEY_ID"] = "AKIDENV";
  WriteDefaultFile();
  Result<Credentials> creds = Resolve();
  ASSERT_FALSE(creds.ok());
  EXPECT_EQ(creds.status().kind(), ErrorKind::kInvalidArgument);
  EXPECT_TRUE(Contains(creds.status().message(), "AWS_SECRET_ACCESS_KEY is not"))
      << creds.status().message();
}

TEST_F(CredentialsTest, EnvironmentSecretWithoutKeyIdIsInvalid) {
  env_vars_["AWS_SECRET_ACCESS_KEY"] = kEnvSecret;
  Result<Credentials> creds = Resolve();
  ASSERT_FALSE(creds.ok());
  EXPECT_EQ(creds.status().kind(), ErrorKind::kInvalidArgument);
  EXPECT_TRUE(Contains(creds.status().message(), "AWS_ACCESS_KEY_ID is not"))
      << creds.status().message();
  EXPECT_FALSE(Contains(creds.status().ToString(), kEnvSecret));
}

TEST_F(CredentialsTest, EmptyEnvironmentValuesCountAsUnset) {
  env_vars_["AWS_ACCESS_KEY_ID"] = "";
  env_vars_["AWS_SECRET_ACCESS_KEY"] = "";
  env_vars_["AWS_PROFILE"] = "";
  WriteDefaultFile();
  Result<Credentials> creds = Resolve();
  ASSERT_TRUE(creds.ok()) << creds.status().ToString();
  EXPECT_EQ(creds->access_key_id, "AKIDFILEDEFAULT");
}

TEST_F(CredentialsTest, SharedFileDefaultProfileUnderHome) {
  WriteDefaultFile();
  Result<Credentials> creds = Resolve();
  ASSERT_TRUE(creds.ok()) << creds.status().ToString();
  EXPECT_EQ(creds->access_key_id, "AKIDFILEDEFAULT");
  EXPECT_EQ(creds->secret_access_key, kFileSecret);
  EXPECT_EQ(creds->session_token, "");
  EXPECT_EQ(creds->source,
            "shared credentials file " + DefaultCredentialsPath().string() + ", profile default");
  ExpectSourceClean(*creds);
}

TEST_F(CredentialsTest, SharedFileProfileFromOptions) {
  WriteDefaultFile();
  Result<Credentials> creds = Resolve({"", "", "", "prod"});
  ASSERT_TRUE(creds.ok()) << creds.status().ToString();
  EXPECT_EQ(creds->access_key_id, "AKIDFILEPROD");
  EXPECT_EQ(creds->secret_access_key, kProdSecret);
  EXPECT_EQ(creds->session_token, "prodTOKEN==");  // '=' inside a value survives
  EXPECT_EQ(creds->source,
            "shared credentials file " + DefaultCredentialsPath().string() + ", profile prod");
  ExpectSourceClean(*creds);
}

TEST_F(CredentialsTest, SharedFileProfileFromAwsProfile) {
  WriteDefaultFile();
  env_vars_["AWS_PROFILE"] = "prod";
  Result<Credentials> creds = Resolve();
  ASSERT_TRUE(creds.ok()) << creds.status().ToString();
  EXPECT_EQ(creds->access_key_id, "AKIDFILEPROD");
}

TEST_F(CredentialsTest, ProfileOptionOverridesAwsProfile) {
  WriteDefaultFile();
  env_vars_["AWS_PROFILE"] = "prod";
  Result<Credentials> creds = Resolve({"", "", "", "default"});
  ASSERT_TRUE(creds.ok()) << creds.status().ToString();
  EXPECT_EQ(creds->access_key_id, "AKIDFILEDEFAULT");
}

TEST_F(CredentialsTest, ProfileOptionSkipsEnvironmentKeys) {
  SetEnvKeys();
  WriteDefaultFile();
  Result<Credentials> creds = Resolve({"", "", "", "prod"});
  ASSERT_TRUE(creds.ok()) << creds.status().ToString();
  EXPECT_EQ(creds->access_key_id, "AKIDFILEPROD");
}

TEST_F(CredentialsTest, AwsProfileDoesNotOverrideEnvironmentKeys) {
  SetEnvKeys();
  env_vars_["AWS_PROFILE"] = "prod";
  WriteDefaultFile();
  Result<Credentials> creds = Resolve();
  ASSERT_TRUE(creds.ok()) << creds.status().ToString();
  EXPECT_EQ(creds->access_key_id, "AKIDENV");
}

TEST_F(CredentialsTest, SharedCredentialsFileVariableOverridesHome) {
  WriteDefaultFile();
  const fs::path other = home_ / "elsewhere" / "creds.ini";
  WriteFile(other, "[default]\naws_access_key_id=AKIDOTHER\naws_secret_access_key=otherSECRET\n");
  env_vars_["AWS_SHARED_CREDENTIALS_FILE"] = other.string();
  Result<Credentials> creds = Resolve();
  ASSERT_TRUE(creds.ok()) << creds.status().ToString();
  EXPECT_EQ(creds->access_key_id, "AKIDOTHER");
  EXPECT_EQ(creds->secret_access_key, "otherSECRET");
  EXPECT_EQ(creds->source, "shared credentials file " + other.string() + ", profile default");
  ExpectSourceClean(*creds);
}

TEST_F(CredentialsTest, SharedCredentialsFileVariableExpandsTilde) {
  WriteFile(home_ / "creds", "[default]\naws_access_key_id=AKIDTILDE\naws_secret_access_key=s\n");
  env_vars_["AWS_SHARED_CREDENTIALS_FILE"] = "~/creds";
  Result<Credentials> creds = Resolve();
  ASSERT_TRUE(creds.ok()) << creds.status().ToString();
  EXPECT_EQ(creds->access_key_id, "AKIDTILDE");
}

TEST_F(CredentialsTest, IniDialect) {
  WriteFile(DefaultCredentialsPath(),
            "\xEF\xBB\xBF# leading comment\r\n"
            "; another comment\r\n"
            "stray_key = outside any section\r\n"
            "[other]\r\n"
            "aws_access_key_id = AKIDOTHER\r\n"
            "aws_secret_access_key = otherSECRET\r\n"
            "\r\n"
            "[ spaced ]\r\n"
            "region = eu-west-1\r\n"
            "  AWS_ACCESS_KEY_ID=AKIDSPACED  \r\n"
            "Aws_Secret_Access_Key\t=\t spaced/SECRET+with=equals \r\n"
            "# aws_session_token = commented out\r\n"
            "not a key value line\r\n"
            "aws_session_token =\r\n");
  Result<Credentials> creds = Resolve({"", "", "", "spaced"});
  ASSERT_TRUE(creds.ok()) << creds.status().ToString();
  EXPECT_EQ(creds->access_key_id, "AKIDSPACED");
  EXPECT_EQ(creds->secret_access_key, "spaced/SECRET+with=equals");
  EXPECT_EQ(creds->session_token, "");
  ExpectSourceClean(*creds);

  creds = Resolve({"", "", "", "other"});
  ASSERT_TRUE(creds.ok()) << creds.status().ToString();
  EXPECT_EQ(creds->access_key_id, "AKIDOTHER");
}

TEST_F(CredentialsTest, ExplicitProfileMissingFromFile) {
  WriteDefaultFile();
  Result<Credentials> creds = Resolve({"", "", "", "staging"});
  ASSERT_FALSE(creds.ok());
  EXPECT_EQ(creds.status().kind(), ErrorKind::kNotFound);
  EXPECT_TRUE(Contains(creds.status().message(),
                       "profile staging not found in " + DefaultCredentialsPath().string()))
      << creds.status().message();
}

TEST_F(CredentialsTest, AwsProfileMissingFromFile) {
  WriteDefaultFile();
  env_vars_["AWS_PROFILE"] = "staging";
  Result<Credentials> creds = Resolve();
  ASSERT_FALSE(creds.ok());
  EXPECT_EQ(creds.status().kind(), ErrorKind::kNotFound);
  EXPECT_TRUE(Contains(creds.status().message(),
                       "profile staging not found in " + DefaultCredentialsPath().string()))
      << creds.status().message();
  EXPECT_TRUE(Contains(creds.status().message(), "AWS_PROFILE")) << creds.status().message();
}

TEST_F(CredentialsTest, ExplicitProfileWithoutFile) {
  Result<Credentials> creds = Resolve({"", "", "", "prod"});
  ASSERT_FALSE(creds.ok());
  EXPECT_EQ(creds.status().kind(), ErrorKind::kNotFound);
  EXPECT_TRUE(Contains(creds.status().message(),
                       "profile prod not found in " + DefaultCredentialsPath().string()))
      << creds.status().message();
}

TEST_F(CredentialsTest, ExplicitProfileWithoutKeys) {
  WriteFile(DefaultCredentialsPath(), "[prod]\nregion = us-east-1\n");
  Result<Credentials> creds = Resolve({"", "", "", "prod"});
  ASSERT_FALSE(creds.ok());
  EXPECT_EQ(creds.status().kind(), ErrorKind::kNotFound);
  EXPECT_TRUE(Contains(creds.status().message(), "profile prod in")) << creds.status().message();
}

TEST_F(CredentialsTest, ProfileWithHalfAKeyPairIsInvalid) {
  WriteFile(DefaultCredentialsPath(), "[default]\naws_access_key_id = AKIDHALF\n");
  Result<Credentials> creds = Resolve();
  ASSERT_FALSE(creds.ok());
  EXPECT_EQ(creds.status().kind(), ErrorKind::kInvalidArgument);
  EXPECT_TRUE(Contains(creds.status().message(), "no aws_secret_access_key"))
      << creds.status().message();

  WriteFile(DefaultCredentialsPath(),
            std::string("[default]\naws_secret_access_key = ") + kFileSecret + "\n");
  creds = Resolve();
  ASSERT_FALSE(creds.ok());
  EXPECT_EQ(creds.status().kind(), ErrorKind::kInvalidArgument);
  EXPECT_TRUE(Contains(creds.status().message(), "no aws_access_key_id"))
      << creds.status().message();
  EXPECT_FALSE(Contains(creds.status().ToString(), kFileSecret));
}

TEST_F(CredentialsTest, NothingAnywhereListsWhatWasTried) {
  Result<Credentials> creds = Resolve();
  ASSERT_FALSE(creds.ok());
  EXPECT_EQ(creds.status().kind(), ErrorKind::kNotFound);
  const std::string& message = creds.status().message();
  EXPECT_TRUE(Contains(message, "options")) << message;
  EXPECT_TRUE(Contains(message, "AWS_ACCESS_KEY_ID")) << message;
  EXPECT_TRUE(Contains(message, DefaultCredentialsPath().string() + " (does not exist)"))
      << message;
}

TEST_F(CredentialsTest, ImplicitDefaultProfileMissingIsNothingFound) {
  WriteFile(DefaultCredentialsPath(), "[prod]\naws_access_key_id=A\naws_secret_access_key=B\n");
  Result<Credentials> creds = Resolve();
  ASSERT_FALSE(creds.ok());
  EXPECT_EQ(creds.status().kind(), ErrorKind::kNotFound);
  EXPECT_TRUE(Contains(creds.status().message(), "no profile default")) << creds.status().message();
}

TEST_F(CredentialsTest, NoHomeAndNoFileVariable) {
  env_vars_.clear();
  Result<Credentials> creds = Resolve();
  ASSERT_FALSE(creds.ok());
  EXPECT_EQ(creds.status().kind(), ErrorKind::kNotFound);
  EXPECT_TRUE(Contains(creds.status().message(), "HOME")) << creds.status().message();
}

TEST_F(CredentialsTest, UnreadableFileIsAnIoError) {
  // A directory where the file should be: unreadable even for root.
  fs::create_directories(DefaultCredentialsPath());
  Result<Credentials> creds = Resolve();
  ASSERT_FALSE(creds.ok());
  EXPECT_EQ(creds.status().kind(), ErrorKind::kIo);
  EXPECT_TRUE(Contains(creds.status().message(), DefaultCredentialsPath().string()))
      << creds.status().message();
}

TEST(MaskAccessKeyTest, ShowsOnlyLastFour) {
  EXPECT_EQ(MaskAccessKey("AKIAIOSFODNN7EXAMPLE"), "****************MPLE");
  EXPECT_EQ(MaskAccessKey("ABCDE"), "*BCDE");
  EXPECT_EQ(MaskAccessKey("ABCD"), "****");
  EXPECT_EQ(MaskAccessKey(""), "");
}

}  // namespace
}  // namespace strata
