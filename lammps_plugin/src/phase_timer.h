// Optional per-phase wall-clock profile (adapt / evaluate / scatter / ...),
// switched on by the environment variable IONMD_PROFILE=1.
#ifndef IONMD_PHASE_TIMER_H
#define IONMD_PHASE_TIMER_H

#include <chrono>
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>

namespace ionmd {

class PhaseTimer {
 public:
  PhaseTimer() : enabled_(std::getenv("IONMD_PROFILE") && std::string(std::getenv("IONMD_PROFILE")) != "0") {}
  bool enabled() const { return enabled_; }

  class Scope {
   public:
    Scope(PhaseTimer &t, const char *phase) : t_(t), phase_(phase), start_(clock::now()) {}
    ~Scope()
    {
      if (t_.enabled_) t_.add(phase_, std::chrono::duration<double>(clock::now() - start_).count());
    }

   private:
    using clock = std::chrono::steady_clock;
    PhaseTimer &t_;
    const char *phase_;
    clock::time_point start_;
  };
  Scope scope(const char *phase) { return Scope(*this, phase); }

  void add(const std::string &phase, double seconds)
  {
    auto &e = phases_[phase];
    e.first += seconds;
    e.second += 1;
  }

  // Table of phase, calls, total seconds, ms per call, share of the total.
  std::string report() const
  {
    double total = 0.0;
    for (const auto &kv : phases_) total += kv.second.first;
    std::ostringstream s;
    s << "ionmd pair_style mlip/torch profile (rank 0):\n";
    s << "  phase          calls     total_s   ms/call   share\n";
    for (const auto &kv : phases_) {
      char line[160];
      std::snprintf(line, sizeof(line), "  %-12s %7ld %11.4f %9.4f %6.1f%%\n", kv.first.c_str(),
                    kv.second.second, kv.second.first, 1e3 * kv.second.first / kv.second.second,
                    total > 0 ? 100.0 * kv.second.first / total : 0.0);
      s << line;
    }
    return s.str();
  }

 private:
  bool enabled_;
  std::map<std::string, std::pair<double, long>> phases_;
};

}    // namespace ionmd

#endif
