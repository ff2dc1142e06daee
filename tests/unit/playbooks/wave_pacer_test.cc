// WavePacer: the closed-loop rule, fed made-up observations (no clock, no network): it starts small,
// grows while each wave is absorbed within the window, shrinks to what came back within the window when
// the target falls behind, never waits past the timeout, stops trusting a silent signal, and never
// exceeds the cap. SplitWave: a wave's shares over hosts.
#include "playbooks/wave_pacer.h"

#include <gtest/gtest.h>

#include <numeric>

namespace headshift {
namespace {

using V = WavePacer::Verdict;

SessionWavesConfig Tuning() {
  SessionWavesConfig t;
  t.first = 16;
  t.window_ms = 1000;
  t.back_fraction = 0.9;
  t.timeout_ms = 15000;
  return t;
}

TEST(WavePacerTest, StartsSmallAndDoublesWhileEachWaveIsAbsorbedWithinTheWindow) {
  WavePacer p(1000, 1000, 0, Tuning());
  EXPECT_EQ(p.NextWave(), 16);
  int64_t back = 0;
  double t = 0;
  std::vector<int64_t> sizes;
  while (p.remaining() > 0) {
    int64_t w = p.NextWave();
    sizes.push_back(w);
    p.Sent(w, w, back, t);
    EXPECT_EQ(p.Observe(back, t + 100), V::kWait);  // nothing back yet
    back += w;                                       // all back 300 ms after the wave
    EXPECT_EQ(p.Observe(back, t + 300), V::kAbsorbed);
    t += 300;
  }
  EXPECT_EQ(sizes, (std::vector<int64_t>{16, 32, 64, 128, 256, 504}));  // the last is what was left
}

TEST(WavePacerTest, AbsorbedWhenTheBackFractionOfEverythingResetSoFarIsBack) {
  WavePacer p(100, 100, 0, Tuning());
  p.Sent(16, 16, 0, 0);
  EXPECT_EQ(p.target(), 15);                  // ceil(0.9 * 16)
  EXPECT_EQ(p.Observe(14, 200), V::kWait);
  EXPECT_EQ(p.Observe(15, 250), V::kAbsorbed);
  // Cumulative: the next wave of 32 needs 0.9 * 48 = 44 back in all, stragglers of wave 1 included.
  p.Sent(32, 32, 15, 300);
  EXPECT_EQ(p.target(), 44);
  EXPECT_EQ(p.Observe(43, 600), V::kWait);
  EXPECT_EQ(p.Observe(44, 700), V::kAbsorbed);
  EXPECT_EQ(p.wave_back(), 29);
}

TEST(WavePacerTest, ShrinksToWhatCameBackWithinTheWindowWhenItFallsBehind) {
  WavePacer p(1000, 1000, 0, Tuning());
  p.Sent(16, 16, 0, 0);
  ASSERT_EQ(p.Observe(16, 100), V::kAbsorbed);
  p.Sent(32, 32, 16, 1000);
  EXPECT_EQ(p.Observe(20, 1500), V::kWait);
  EXPECT_EQ(p.Observe(26, 1990), V::kWait);   // 10 of this wave back within its window
  EXPECT_EQ(p.Observe(40, 2500), V::kWait);   // past the window: no longer counted as "within"
  EXPECT_EQ(p.Observe(44, 3200), V::kBehind); // absorbed, but late
  EXPECT_EQ(p.wave_back_in_window(), 10);
  EXPECT_EQ(p.NextWave(), 12);                // 28 back in 2.2 s is 12 per window, more than the 10 seen in it
  // Keeping up again grows from there.
  p.Sent(12, 12, 44, 3300);
  EXPECT_EQ(p.Observe(54, 3700), V::kAbsorbed);  // ceil(0.9 * 60)
  EXPECT_EQ(p.NextWave(), 24);
}

TEST(WavePacerTest, NothingSeenWithinTheWindowShrinksToTheWavesRatePerWindow) {
  WavePacer p(100, 100, 0, Tuning());
  p.Sent(16, 16, 0, 0);
  EXPECT_EQ(p.Observe(0, 900), V::kWait);
  EXPECT_EQ(p.Observe(16, 5000), V::kBehind);
  EXPECT_EQ(p.NextWave(), 3);  // 16 back in 5 s: 3 per 1 s window
}

TEST(WavePacerTest, ALateFirstObservationDoesNotCollapseTheWave) {
  WavePacer p(200, 200, 0, Tuning());
  p.Sent(32, 32, 0, 0);
  // The signal's first answer arrives after the window (a slow read): 30 back by 1.2 s.
  EXPECT_EQ(p.Observe(30, 1200), V::kBehind);
  EXPECT_EQ(p.NextWave(), 25);  // 30 in 1.2 s = 25 per window, not 1
}

TEST(WavePacerTest, TimeoutSendsTheNextWaveAnywayAndTwoSilentInARowGiveUpTheSignal) {
  WavePacer p(200, 200, 0, Tuning());
  p.Sent(16, 16, 0, 0);
  EXPECT_EQ(p.Observe(0, 14999), V::kWait);
  EXPECT_EQ(p.Observe(0, 15000), V::kTimeout);  // never stalls the cut
  EXPECT_FALSE(p.given_up());
  EXPECT_EQ(p.NextWave(), 1);
  p.Sent(1, 1, 0, 15000);
  EXPECT_EQ(p.Observe(0, 30000), V::kTimeout);  // not one device back in two waves: the signal is not trusted
  EXPECT_TRUE(p.given_up());
  EXPECT_EQ(p.NextWave(), 183);                  // the rest in one last wave
}

TEST(WavePacerTest, ASlowTargetThatStillTakesDevicesBackKeepsSmallWaves) {
  WavePacer p(200, 200, 0, Tuning());
  p.Sent(16, 16, 0, 0);
  EXPECT_EQ(p.Observe(4, 800), V::kWait);
  EXPECT_EQ(p.Observe(5, 15000), V::kTimeout);
  EXPECT_EQ(p.NextWave(), 4);                    // what came back within the window
  p.Sent(4, 4, 5, 15000);
  EXPECT_EQ(p.Observe(6, 30000), V::kTimeout);  // one more back: slow, not silent
  p.Sent(p.NextWave(), p.NextWave(), 6, 30000);
  EXPECT_EQ(p.Observe(7, 45000), V::kTimeout);
  EXPECT_FALSE(p.given_up());
  EXPECT_LE(p.NextWave(), 4);
}

TEST(WavePacerTest, AnAbsorbedWaveClearsTheTimeoutStreak) {
  WavePacer p(200, 200, 0, Tuning());
  p.Sent(16, 16, 0, 0);
  ASSERT_EQ(p.Observe(0, 15000), V::kTimeout);
  p.Sent(1, 1, 0, 15000);
  ASSERT_EQ(p.Observe(16, 15200), V::kAbsorbed);
  p.Sent(2, 2, 16, 15300);
  ASSERT_EQ(p.Observe(16, 30300), V::kTimeout);
  EXPECT_FALSE(p.given_up());
}

TEST(WavePacerTest, TheCapBoundsEveryWave) {
  // 100 resets per second with a 1 s window: no wave above 100, however fast the target.
  WavePacer p(1000, 1000, 100, Tuning());
  EXPECT_EQ(p.cap_wave(), 100);
  int64_t back = 0;
  double t = 0;
  int64_t biggest = 0;
  while (p.remaining() > 0) {
    int64_t w = p.NextWave();
    biggest = std::max(biggest, w);
    p.Sent(w, w, back, t);
    back += w;
    ASSERT_EQ(p.Observe(back, t + 10), V::kAbsorbed);
    t += 10;
  }
  EXPECT_EQ(biggest, 100);
  // A cap below the first wave wins too, and no cap (0) leaves sizes alone.
  EXPECT_EQ(WavePacer(1000, 1000, 5, Tuning()).NextWave(), 5);
  EXPECT_EQ(WavePacer(1000, 1000, 0, Tuning()).cap_wave(), 0);
}

TEST(WavePacerTest, GoneSocketsAndFewerDevicesThanSocketsLowerWhatIsExpected) {
  WavePacer p(100, 10, 0, Tuning());  // 100 sockets but only 10 devices expected back
  p.Sent(16, 16, 0, 0);
  EXPECT_EQ(p.target(), 9);
  EXPECT_EQ(p.Observe(9, 100), V::kAbsorbed);
  WavePacer q(100, 100, 0, Tuning());
  q.Sent(16, 0, 0, 0);  // every socket of the wave was gone already: nothing to wait for
  EXPECT_EQ(q.Observe(0, 50), V::kAbsorbed);
}

TEST(SplitWaveTest, ProportionalToWhatEachHostHasLeft) {
  EXPECT_EQ(SplitWave(10, {30, 10}), (std::vector<int64_t>{8, 2}));  // 7.5/2.5: the larger remainder first
  EXPECT_EQ(SplitWave(16, {100, 0, 100}), (std::vector<int64_t>{8, 0, 8}));
  EXPECT_EQ(SplitWave(50, {3, 4}), (std::vector<int64_t>{3, 4}));  // never more than a host has
  EXPECT_EQ(SplitWave(0, {3, 4}), (std::vector<int64_t>{0, 0}));
  auto s = SplitWave(7, {1, 1, 1, 100});
  EXPECT_EQ(std::accumulate(s.begin(), s.end(), int64_t{0}), 7);
  EXPECT_LE(s[0], 1);
}

}  // namespace
}  // namespace headshift
