// A C++ file for the C allocator's g++ run: much of the standard library,
// instantiated, so that cc1plus (a heavy malloc user) does real work.
#include <algorithm>
#include <any>
#include <array>
#include <atomic>
#include <bitset>
#include <chrono>
#include <complex>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <iomanip>
#include <iostream>
#include <list>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <queue>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

template <typename K, typename V>
std::string summary(const std::map<K, std::vector<V>>& m) {
    std::ostringstream out;
    for (const auto& [k, v] : m)
        out << k << ':' << std::accumulate(v.begin(), v.end(), V{}) << ' ';
    return out.str();
}

int main() {
    std::mt19937 rng(42);
    std::map<int, std::vector<long>> m;
    std::unordered_map<std::string, std::set<int>> words;
    for (int i = 0; i < 5000; i++) {
        m[static_cast<int>(rng() % 17)].push_back(static_cast<long>(rng() % 1000));
        words["w" + std::to_string(rng() % 300)].insert(i);
    }
    std::regex re("w(1[0-9]+)");
    int matches = 0;
    for (const auto& [w, s] : words)
        matches += std::regex_match(w, re) ? static_cast<int>(s.size()) : 0;
    std::variant<int, std::string> v = std::string("variant");
    std::optional<std::complex<double>> c = std::complex<double>(3, 4);
    auto f = std::async(std::launch::async, [&] { return summary(m).size(); });
    std::deque<std::tuple<int, double>> dq;
    for (int i = 0; i < 100; i++) dq.emplace_back(i, i * 0.5);
    std::priority_queue<int> pq;
    for (int i = 0; i < 100; i++) pq.push(i * 37 % 101);
    std::cout << summary(m) << '\n'
              << words.size() << ' ' << matches << ' ' << std::get<std::string>(v) << ' '
              << std::abs(*c) << ' ' << f.get() << ' ' << std::get<1>(dq.back()) << ' ' << pq.top() << '\n';
}
