// Redaction: registered secrets and DSN passwords never survive Redact().
#include "common/redact.h"

#include <gtest/gtest.h>

namespace headshift {
namespace {

TEST(RedactTest, RegisteredSecretIsMaskedEverywhere) {
  ClearSecretsForTest();
  RegisterSecret("hskey-api-abc-TOPSECRET");
  EXPECT_EQ(Redact("Authorization: Bearer hskey-api-abc-TOPSECRET; again hskey-api-abc-TOPSECRET"),
            "Authorization: Bearer ***; again ***");
}

TEST(RedactTest, DsnPasswordRegisteredOnlyPasswordMasked) {
  ClearSecretsForTest();
  RegisterDsnSecrets("host=db.internal port=5432 dbname=headscale user=hs password=pa55w0rd!");
  EXPECT_EQ(Redact("connect host=db.internal password=pa55w0rd! failed: pa55w0rd!"),
            "connect host=db.internal password=*** failed: ***");
  RegisterDsnSecrets("postgresql://hs:uriPassw0rd@db:5432/headscale");
  EXPECT_EQ(Redact("x uriPassw0rd y"), "x *** y");
}

TEST(RedactTest, UnregisteredDsnPasswordsAreStillMasked) {
  ClearSecretsForTest();
  EXPECT_EQ(Redact("dsn 'host=x password=neverseen1 dbname=y'"), "dsn 'host=x password=*** dbname=y'");
  EXPECT_EQ(Redact("postgres://u:neverseen2@h/db"), "postgres://u:***@h/db");
  EXPECT_EQ(Redact("no secrets here"), "no secrets here");
}

TEST(RedactTest, TooShortSecretsAreIgnored) {
  ClearSecretsForTest();
  RegisterSecret("ab");
  EXPECT_EQ(Redact("tab"), "tab");
}

TEST(RedactTest, SecretsSurviveNeitherJsonEscapingNorOverlap) {
  ClearSecretsForTest();
  RegisterSecret("pa\"ss\\word");  // pa"ss\word
  EXPECT_EQ(Redact(R"({"error":"login pa\"ss\\word refused"})"), R"({"error":"login *** refused"})");
  EXPECT_EQ(Redact("raw pa\"ss\\word"), "raw ***");
  // One secret inside another: the longer one is masked whole, whatever the registration order.
  RegisterSecret("abcd");
  RegisterSecret("xxabcdyy");
  EXPECT_EQ(Redact("k=xxabcdyy j=abcd"), "k=*** j=***");
}

TEST(RedactTest, UnregisteredCredentialsOfEveryFormAreMasked) {
  ClearSecretsForTest();
  EXPECT_EQ(Redact(R"(password='a\'bcdefgh' host=x)"), "password=*** host=x");
  EXPECT_EQ(Redact("postgresql://:emptyuser1@h/db"), "postgresql://:***@h/db");
  EXPECT_EQ(Redact("Authorization: Bearer tok123456 next"), "Authorization: Bearer *** next");
  EXPECT_EQ(Redact("authorization: Basic dXNlcjpwYXNz"), "authorization: Basic ***");
  EXPECT_EQ(Redact("Basic checks passed"), "Basic checks passed");
}

}  // namespace
}  // namespace headshift
